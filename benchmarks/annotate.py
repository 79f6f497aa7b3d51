"""Benchmark of `python -m spacy_dtn annotate`: notes/s, words/s and peak
memory for one process, `--n-process 2`, Spark `local[2]` and one process
reading each note sentence by sentence (`--sentencizer`); inference
words/s with entity confidence on and off; ECE before and after calibration.

    python benchmarks/annotate.py --model training/dtn/model-best \\
        --dev corpus/target/dev.spacy --test corpus/target/test.spacy

(after `spacy project run all`). Writes benchmarks/results/annotate.json and
benchmarks/results/annotate_reliability.png.

The notes: every sentence of the shipped NCBI-disease and BC5CDR corpora
(train, devel, test, in file order), tokens joined by spaces, cut into notes
of 2 to 6 consecutive sentences (seeded), one sentence per line; the first
`--notes` of them, as a Parquet table (id, text).

Each engine runs as its own `annotate` command. notes/s and words/s are over
the time the command reports for annotating (first note read to last note
written: for Spark, the job, which includes starting its Python workers and
their pipeline loads); the end-to-end time (start-up, model load and Spark's
JVM included) is recorded too, with the peak resident memory of the
command's whole process tree (the sum over its processes, sampled every 0.1
s) and the CPU seconds the tree used. The engines take turns, `--repeats` rounds, and the median is kept, so a
ratio between engines is measured under the same conditions. The machine's
load average is recorded before and after each run: other jobs on a shared
machine slow everything down and distort ratios.
"""
import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import srsly

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
WORK = ROOT / "benchmarks" / "work" / "annotate"
CORPORA = ["NCBI-disease-IOB", "BC5CDR-IOB"]
SPLITS = ["train", "devel", "test"]
SENTENCES_PER_NOTE = (2, 6)
ENGINES = {
    "one process": ["--n-process", "1"],
    "--n-process 2": ["--n-process", "2"],
    "Spark local[2]": ["--engine", "spark", "--master", "local[2]"],
    "one process, --sentencizer": ["--n-process", "1", "--sentencizer"],
}

CONFIDENCE_COST = r"""
import json, statistics, sys, time, spacy
import pyarrow.parquet
nlp = spacy.load(sys.argv[1])
texts = pyarrow.parquet.read_table(sys.argv[2], columns=["text"]).column("text").to_pylist()[: int(sys.argv[3])]
words = sum(len(nlp.make_doc(t)) for t in texts)
ners = [pipe for _, pipe in nlp.pipeline if hasattr(pipe, "confidence")]
list(nlp.pipe(texts[:100]))
runs = {True: [], False: []}
for _ in range(int(sys.argv[4])):
    for on in (False, True):
        for ner in ners:
            ner.confidence = on
        wall, cpu = time.perf_counter(), time.process_time()
        list(nlp.pipe(texts, batch_size=64))
        runs[on].append((words / (time.perf_counter() - wall), words / (time.process_time() - cpu)))
print(json.dumps({("on" if on else "off"): {"words_per_s": statistics.median(w for w, _ in r),
                  "words_per_cpu_s": statistics.median(c for _, c in r)} for on, r in runs.items()}))
"""


def sentences(path: Path) -> Iterator[List[str]]:
    """Token lists of an IOB file (token first, blank line between sentences)."""
    words: List[str] = []
    for line in path.read_text(encoding="utf8").splitlines():
        if line.strip():
            words.append(line.split("\t")[0])
        elif words:
            yield words
            words = []
    if words:
        yield words


def make_notes(count: int, seed: int = 0) -> List[str]:
    rng = random.Random(seed)
    pool = [" ".join(s) for corpus in CORPORA for split in SPLITS for s in sentences(ROOT / "assets" / corpus / f"{split}.tsv")]
    notes, i = [], 0
    while len(notes) < count and i < len(pool):
        size = rng.randint(*SENTENCES_PER_NOTE)
        notes.append("\n".join(pool[i : i + size]))
        i += size
    if len(notes) < count:
        raise SystemExit(f"The corpora make only {len(notes)} notes; ask for fewer with --notes.")
    return notes


def process_tree(root: int) -> Dict[int, Tuple[int, float]]:
    """Resident bytes and CPU seconds so far of a process and all its
    descendants, by pid (from /proc)."""
    children: Dict[int, List[int]] = {}
    stats: Dict[int, Tuple[int, float]] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            children.setdefault(int(fields[1]), []).append(int(entry.name))
            stats[int(entry.name)] = (int(fields[21]) * os.sysconf("SC_PAGE_SIZE"), (int(fields[11]) + int(fields[12])) / tick)
        except (OSError, ValueError):
            continue
    tree, todo = {}, [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            tree[pid] = stats[pid]
        todo += children.get(pid, [])
    return tree


def timed_run(cmd: List[str]) -> Dict[str, float]:
    """Wall time, peak tree RSS and CPU seconds (the last sample of each
    process of the tree) of a command; fails loudly if it fails."""
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "OMP_NUM_THREADS": "1"})
    peak = [0]
    cpu: Dict[int, float] = {}

    def sample() -> None:
        while proc.poll() is None:
            tree = process_tree(proc.pid)
            peak[0] = max(peak[0], sum(rss for rss, _ in tree.values()))
            cpu.update({pid: seconds for pid, (_, seconds) in tree.items()})
            time.sleep(0.1)

    sampler = threading.Thread(target=sample)
    sampler.start()
    out, err = proc.communicate()
    seconds = time.perf_counter() - start
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err.decode()[-3000:]}")
    summary = out.decode().strip().splitlines()[-1]
    return {"seconds": seconds, "annotate_seconds": float(summary.rsplit(" in ", 1)[1].split()[0]), "cpu_seconds": sum(cpu.values()), "peak_rss_mb": peak[0] / 2**20, "load_before": load_before,
            "load_after": os.getloadavg()[0], "summary": summary}


def engine_speed(model: str, notes_path: Path, notes: int, words: int, repeats: int, engines: List[str]) -> List[Dict]:
    runs: Dict[str, List[Dict]] = {name: [] for name in engines}
    for round_ in range(repeats):
        for index, name in enumerate(engines):
            output = WORK / f"out_{index}.parquet"
            subprocess.run(["rm", "-rf", str(output)], check=True)
            cmd = [sys.executable, "-m", "spacy_dtn", "annotate", model, str(notes_path), str(output), *ENGINES[name]]
            runs[name].append(timed_run(cmd))
            print(name, round_, runs[name][-1], flush=True)
    def median(name: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[name])

    out = []
    for name in engines:
        seconds, annotating = median(name, "seconds"), median(name, "annotate_seconds")
        out.append({
            "engine": name, "seconds": seconds, "notes_per_s": notes / seconds, "words_per_s": words / seconds,
            "speedup": median(engines[0], "seconds") / seconds,
            "annotate_seconds": annotating, "annotate_notes_per_s": notes / annotating,
            "annotate_words_per_s": words / annotating, "annotate_speedup": median(engines[0], "annotate_seconds") / annotating,
            "peak_rss_mb": max(r["peak_rss_mb"] for r in runs[name]),
            "cpu_seconds": median(name, "cpu_seconds"),
            "runs": runs[name],
        })
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="training/dtn/model-best")
    parser.add_argument("--dev", type=Path, default=Path("corpus/target/dev.spacy"))
    parser.add_argument("--test", type=Path, default=Path("corpus/target/test.spacy"))
    parser.add_argument("--notes", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=2, help="rounds of the engines (median kept)")
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=list(ENGINES))
    parser.add_argument("--confidence-notes", type=int, default=1000, help="notes of the confidence on/off timing")
    parser.add_argument("--output", type=Path, default=RESULTS / "annotate.json")
    args = parser.parse_args()
    import pyarrow
    import pyarrow.parquet
    import spacy

    WORK.mkdir(parents=True, exist_ok=True)
    texts = make_notes(args.notes)
    notes_path = WORK / "notes.parquet"
    pyarrow.parquet.write_table(pyarrow.table({"id": [f"note{i:06d}" for i in range(len(texts))], "text": texts}), notes_path)
    tokenizer = spacy.blank("en")
    words = sum(len(tokenizer.make_doc(t)) for t in texts)
    print(f"{len(texts)} notes, {words} words", flush=True)

    calibration_json = WORK / "calibration.json"
    subprocess.run([sys.executable, "-m", "spacy_dtn", "calibrate", args.model, str(args.dev), str(WORK / "model-calibrated"),
                    "--test", str(args.test), "--metrics", str(calibration_json),
                    "--plot", str(RESULTS / "annotate_reliability.png")], check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    calibration = {corpus: {setting: {k: r[k] for k in ("temperature", "ece", "log_loss", "entities", "accuracy")}
                            for setting, r in settings.items()}
                   for corpus, settings in srsly.read_json(calibration_json).items()}

    cost = subprocess.run([sys.executable, "-c", CONFIDENCE_COST, args.model, str(notes_path), str(args.confidence_notes), "5"],
                          capture_output=True, text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    confidence = json.loads(cost.stdout.strip().splitlines()[-1])
    confidence["cost"] = 1 - confidence["on"]["words_per_cpu_s"] / confidence["off"]["words_per_cpu_s"]
    print("confidence", confidence, flush=True)

    engines = engine_speed(str(WORK / "model-calibrated"), notes_path, len(texts), words, args.repeats, args.engines)
    record = {
        "notes": len(texts), "words": words,
        "notes_made_from": f"sentences of {', '.join(CORPORA)} ({', '.join(SPLITS)}), {SENTENCES_PER_NOTE[0]}-"
                           f"{SENTENCES_PER_NOTE[1]} consecutive sentences per note, seed 0",
        "model": args.model, "cpus": os.cpu_count(), "omp_num_threads": 1,
        "engines": engines, "confidence": confidence, "calibration": calibration,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    srsly.write_json(args.output, record)
    print(markdown(record))
    return 0


def markdown(record: Dict) -> str:
    lines = ["| engine | notes/s | words/s | speed-up | end to end s (speed-up) | CPU s | peak memory (MB) | load avg before/after |",
             "|---|---|---|---|---|---|---|---|"]
    for e in record["engines"]:
        loads = "; ".join(f"{r['load_before']:.1f}/{r['load_after']:.1f}" for r in e["runs"])
        lines.append(f"| {e['engine']} | {e['annotate_notes_per_s']:.1f} | {e['annotate_words_per_s']:.0f} | "
                     f"{e['annotate_speedup']:.2f}x | {e['seconds']:.1f} ({e['speedup']:.2f}x) | "
                     f"{e['cpu_seconds']:.0f} | {e['peak_rss_mb']:.0f} | {loads} |")
    c = record["confidence"]
    lines += ["", "| confidence | words/s | words/CPU-s |", "|---|---|---|"]
    lines += [f"| {k} | {c[k]['words_per_s']:.0f} | {c[k]['words_per_cpu_s']:.0f} |" for k in ("off", "on")]
    lines += ["", "| corpus | ECE before (T=1) | ECE after (T fitted on dev) | T |", "|---|---|---|---|"]
    for corpus, s in record["calibration"].items():
        lines.append(f"| {corpus} | {s['before']['ece']:.4f} | {s['after']['ece']:.4f} | {s['after']['temperature']:.3f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
