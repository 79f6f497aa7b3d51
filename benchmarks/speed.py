"""Speed of trained pipelines side by side in one run, on the same documents:
inference words/s (one process, and `n_process=2`), training words/s, peak
serving memory, and the test F1 each pipeline serves at.

    OMP_NUM_THREADS=1 taskset -c 1 python -m benchmarks.speed \\
        --system dtn_sequential=training/dtn/model-best \\
        --system dtn_sequential_int8=training/dtn/model-best+quantize \\
        --system baseline=training/baseline/model-best \\
        --system spacy_ner_target=training/spacy_ner/model-best \\
        --test corpus/target/test.spacy --train corpus/target/train.spacy --dev corpus/target/dev.spacy \\
        --rounds 5 --output benchmarks/results/speed.json

`NAME=PATH+quantize` loads the dtn_ner component with `quantize = true`,
`+bfloat16` with `bfloat16 = true`;
`NAME=PATH+notrain` skips its training measurement, `+once` measures it in the
first round only and without `n_process=2` (the transformer, minutes per pass).
`benchmarks.run --speed` measures the systems of its `--quick` setting so. Training runs each
pipeline's saved config.cfg (benchmarks/train_speed.py, 100 steps).
Every measurement is a fresh process; the systems take turns within each
round, so on a machine shared with other jobs each round measures them under
about the same load. Reported: the median over rounds of words per second of
wall time and of CPU time (the process's own CPU seconds: what a core of its
own would give), and the median over rounds of each system's ratio to
`--reference`. Inference is `nlp.pipe` over the test texts, batch size 256:
the fastest of three passes after a warm one. `n_process=2` runs on all cores
of the machine (it resets the CPU affinity the command was started with) over
MULTIPROCESS_REPEAT copies of the test texts, so that starting the workers
(each loads the pipeline) is not most of what is timed, next to one process
over the same texts and cores: their ratio is the speed-up.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import srsly

from .grid import BUDGET, QUICK, ROOT, corpus_paths, source_model_path

BATCH_SIZE = 256
PASSES = 3  # timed passes per process; the fastest is the one least disturbed by other jobs
# (name, the --quick system whose pipeline it serves, flags) for `benchmarks.run --speed`.
QUICK_SYSTEMS = [
    ("dtn_sequential", "dtn_sequential", ""), ("dtn_sequential_int8", "dtn_sequential", "+quantize"),
    ("baseline", "baseline", ""), ("spacy_ner_target", "spacy_ner_target", ""),
    ("dtn_trf", "dtn_trf", "+once+notrain"), ("dtn_trf_int8", "dtn_trf", "+quantize+once+notrain"),
    ("dtn_trf_bfloat16", "dtn_trf", "+bfloat16+once+notrain"),
]
PRECISIONS = ("quantize", "bfloat16")  # flags that are dtn_ner settings made true at load
CPU_FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
MULTIPROCESS_REPEAT = 8  # copies of the test texts for the n_process measurement (~200k words)

SERVE = r"""
import json, os, sys, time, spacy
from spacy.tokens import DocBin
from spacy.training import Example
path, test, batch_size, settings, n_process, passes, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
if repeat > 1:  # the n_process comparison: every core, for one process too
    os.sched_setaffinity(0, range(os.cpu_count()))
nlp = spacy.load(path, config={"components": {"ner": settings}} if settings else {})
gold = list(DocBin().from_disk(test).get_docs(nlp.vocab)) * repeat
texts = [d.text for d in gold]
words = sum(len(nlp.make_doc(t)) for t in texts)
list(nlp.pipe(texts, batch_size=batch_size, n_process=n_process))
walls, cpus = [], []
for _ in range(passes):
    wall, cpu = time.perf_counter(), time.process_time()
    docs = list(nlp.pipe(texts, batch_size=batch_size, n_process=n_process))
    walls.append(time.perf_counter() - wall)
    cpus.append(time.process_time() - cpu)
peak = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
f1 = nlp.get_pipe("ner").scorer([Example(d, g) for d, g in zip(docs, gold)])["ents_f"]
print(json.dumps({"words": words, "wall_words_per_s": words / min(walls), "cpu_words_per_s": words / min(cpus),
                  "peak_rss_mb": int(peak) / 1024, "test_f1": f1}))
"""


def serve(path: str, test: Path, settings: Dict[str, bool], n_process: int = 1, repeat: int = 1) -> Dict:
    """Inference in a fresh process, the ner component loaded with `settings`:
    the best of PASSES timed passes after a warm one, and its peak RSS."""
    out = subprocess.run(
        [sys.executable, "-c", SERVE, path, str(test), str(BATCH_SIZE), json.dumps(settings), str(n_process),
         str(PASSES), str(repeat)], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"Serving {path} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def train_speed(path: str, args: argparse.Namespace) -> Dict:
    """Training words/s of the pipeline's own config (benchmarks/train_speed.py)."""
    overrides = ["--paths.train", str(args.train), "--paths.dev", str(args.dev)]
    if args.source_model:  # else the saved config's own [paths.source_model]
        overrides += ["--paths.source_model", str(args.source_model)]
    out = subprocess.run(
        [sys.executable, str(Path(__file__).parent / "train_speed.py"), str(Path(path) / "config.cfg"),
         "--steps", str(args.train_steps), *overrides], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"Training {path} failed:\n{out.stderr[-3000:]}")
    line = out.stdout.strip().splitlines()[-1]
    cpu = float(line.split(" words per CPU second")[0].split()[-1])
    wall = float(line.split("=")[-1].split()[0])
    return {"train_cpu_words_per_s": cpu, "train_words_per_s": wall}


def cpu_description() -> Dict[str, object]:
    """The CPU's model and the vector extensions that decide int8 and bfloat16
    speed (VNNI, AVX512-BF16, AMX): runs on different CPUs are not comparable."""
    fields: Dict[str, str] = {}  # the first processor's
    cpuinfo = Path("/proc/cpuinfo")
    for line in (cpuinfo.read_text() if cpuinfo.exists() else "").splitlines():
        name, colon, value = line.partition(":")
        if colon:
            fields.setdefault(name.strip(), value.strip())
    flags = fields.get("flags", "").split()
    return {"cpu": fields.get("model name") or platform.processor() or platform.machine(),
            "cpu_features": [feature for feature in CPU_FEATURES if feature in flags]}


def load_average() -> List[float]:
    return [round(x, 2) for x in os.getloadavg()]


def summary(rounds: List[Dict[str, Dict]], reference: str) -> List[Dict]:
    """Per system: the median of each measure over rounds, and of its ratio to the reference in the same round."""
    out = []
    for system in rounds[0]:
        record: Dict = {"system": system}
        measured = [r[system] for r in rounds if system in r]
        for key in measured[0]:
            values = [m[key] for m in measured if m.get(key) is not None]
            if values and isinstance(values[0], (int, float)) and not isinstance(values[0], bool):
                record[key] = statistics.median(values)
                if reference in rounds[0] and key.endswith("per_s"):
                    ratios = [r[system][key] / r[reference][key] for r in rounds
                              if system in r and r[system].get(key) is not None and r[reference].get(key)]
                    if ratios:
                        record[f"{key}_vs_{reference}"] = round(statistics.median(ratios), 3)
            elif values:
                record[key] = values[0]
        out.append(record)
    return out


def measure_speed(quality_path: Path, speed_path: Path) -> None:
    """`benchmarks.run --speed`: the systems trained in the --quick setting, side by side."""
    pair, fraction, seed = QUICK
    quick = {r["system"]: ROOT / r["model"] for r in srsly.read_json(quality_path)
             if (r["pair"], r["fraction"], r["seed"], r.get("budget")) == (pair, fraction, seed, BUDGET)}
    systems = [f"{name}={quick[trained]}{flags}" for name, trained, flags in QUICK_SYSTEMS if trained in quick]
    corpus = corpus_paths(pair, fraction, seed)
    main([arg for system in systems for arg in ("--system", system)] + [
        "--test", str(corpus["test"]), "--train", str(corpus["train"]), "--dev", str(corpus["dev"]),
        "--source-model", str(source_model_path("dtn", pair)), "--output", str(speed_path)])


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--system", action="append", required=True, help="NAME=PIPELINE_PATH[+quantize|+bfloat16]")
    parser.add_argument("--test", type=Path, required=True)
    parser.add_argument("--train", type=Path, help="with --dev: also measure training words/s")
    parser.add_argument("--dev", type=Path)
    parser.add_argument("--source-model", type=Path, help="the source pipeline of sequential DTN configs "
                        "(default: the one each pipeline's saved config names)")
    parser.add_argument("--train-steps", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--train-rounds", type=int, default=3, help="rounds that also measure training")
    parser.add_argument("--no-multiprocess", action="store_true", help="skip the n_process=2 measurement")
    parser.add_argument("--reference", default="spacy_ner_target")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    systems = dict(s.split("=", 1) for s in args.system)
    started = {"load_average": load_average(), "time": time.strftime("%Y-%m-%d %H:%M:%S")}
    rounds: List[Dict[str, Dict]] = []
    for k in range(args.rounds):
        measured: Dict[str, Dict] = {}
        for name, spec in systems.items():
            path, *flags = spec.split("+")
            settings = {flag: True for flag in PRECISIONS if flag in flags}
            train = "notrain" not in flags
            if "once" in flags and k > 0:
                continue
            served = serve(path, args.test, settings)
            record = {"infer_words_per_s": served["wall_words_per_s"], "infer_cpu_words_per_s": served["cpu_words_per_s"],
                      "peak_rss_mb": served["peak_rss_mb"], "test_f1": served["test_f1"], "words": served["words"],
                      **{flag: flag in settings for flag in PRECISIONS}, "batch_size": BATCH_SIZE,
                      "model_mb": sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file()) / 2**20}
            if not args.no_multiprocess and "once" not in flags:
                one, two = (serve(path, args.test, settings, n, MULTIPROCESS_REPEAT)["wall_words_per_s"] for n in (1, 2))
                record.update({"infer_words_per_s_n_process_2": two, "n_process_2_speedup": two / one})
            if args.train and train and not settings and k < args.train_rounds:  # int8 and bfloat16 train as float
                record.update(train_speed(path, args))
            measured[name] = record
            print(f"round {k + 1}/{args.rounds} {name}: " + ", ".join(
                f"{key} {value:.3f}" if isinstance(value, float) else f"{key} {value}" for key, value in record.items()),
                flush=True)
        rounds.append(measured)
    result = summary(rounds, args.reference)
    meta = {"command": " ".join([os.path.basename(sys.executable), "-m", "benchmarks.speed", *(argv or sys.argv[1:])]),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "cpu_affinity": sorted(os.sched_getaffinity(0)),
            **cpu_description(), "rounds": args.rounds,
            "load_average_start": started["load_average"], "load_average_end": load_average(), "started": started["time"]}
    for record in result:
        record["run"] = meta
    for record in result:
        print(json.dumps({k: v for k, v in record.items() if k != "run"}))
    if args.output:
        srsly.write_json(args.output, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
