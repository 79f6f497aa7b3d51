"""Benchmarks: DTN against fixed sharing schemes, the target-only baseline and
spaCy's own `ner`, on the same splits, step budget and dev-set model selection.

    python benchmarks/run.py --quick      # BC5CDR->NCBI-disease, 10%, seed 0
    python benchmarks/run.py              # both pairs, 5/10/25/100%, 3 seeds, schemes at 10%
    python benchmarks/run.py --quick --systems dtn_trf   # the transformer DTN row (.[transformers])
    python benchmarks/run.py --quick --schemes --seeds 0 1 2   # the 10% setting over 3 seeds

Every finished run is a record in benchmarks/results/quality.json and is
skipped when the command is run again, so a long run can be resumed.
Runners may share the file: records are merged under a lock. On 2 cores,
split the grid and pin one single-threaded runner to each core, e.g.

    OMP_NUM_THREADS=1 taskset -c 0 python benchmarks/run.py --pairs "BC5CDR->NCBI-disease" &
    OMP_NUM_THREADS=1 taskset -c 1 python benchmarks/run.py --pairs "BC2GM->BioNLP13PC" &
`--speed` measures inference and training speed, peak memory and model size.
"""
import argparse
import fcntl
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import srsly

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
RESULTS = BENCH / "results"
WORK = BENCH / "work"  # corpora and trained pipelines (git-ignored)
CONFIGS = ROOT / "configs"
PAIRS = {
    "BC5CDR->NCBI-disease": ("BC5CDR-IOB", "NCBI-disease-IOB"),
    "BC2GM->BioNLP13PC": ("BC2GM-IOB", "BioNLP13PC-IOB"),
}
FRACTIONS = [0.05, 0.1, 0.25, 1.0]
SEEDS = [0, 1, 2]
SOURCE_STEPS = 1500
TARGET_STEPS = 600
EVAL_FREQUENCY = 100
SOURCE_DEV_COUNT = 1000
SYSTEMS = ["spacy_ner_target", "spacy_ner_transfer", "baseline", "dtn_sequential", "dtn_joint"]
# Only on request (--systems): needs pip install -e ".[transformers]" and is ~10x slower on CPU.
OPTIONAL_SYSTEMS = ["dtn_trf"]
SOURCE_CONFIGS = {"dtn": CONFIGS / "source.cfg", "trf": CONFIGS / "source_trf.cfg", "spacy": BENCH / "configs" / "spacy_ner.cfg"}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def threads() -> int:
    """Threads a training may use (OMP_NUM_THREADS, else the cores torch would take)."""
    return int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1)


def corpora(pair: str, fraction: float, seed: int) -> Dict[str, Path]:
    """Convert the pair once; the target training set is a seeded fraction."""
    from spacy_dtn.converters import convert

    source, target = PAIRS[pair]
    folder = WORK / "corpus" / pair.replace(">", "")
    paths = {
        "source_train": folder / "source_train.spacy",
        "source_dev": folder / "source_dev.spacy",
        "train": folder / f"target_train_{fraction}_{seed}.spacy",
        "dev": folder / "target_dev.spacy",
        "test": folder / "target_test.spacy",
    }
    jobs = {
        "source_train": (ROOT / "assets" / source / "train.tsv", {}),
        "source_dev": (ROOT / "assets" / source / "devel.tsv", {"count": SOURCE_DEV_COUNT, "seed": 0}),
        "train": (ROOT / "assets" / target / "train.tsv", {"fraction": fraction, "seed": seed} if fraction < 1 else {}),
        "dev": (ROOT / "assets" / target / "devel.tsv", {}),
        "test": (ROOT / "assets" / target / "test.tsv", {}),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, (tsv, sampling) in jobs.items():
        if not paths[name].exists():
            convert("iob", tsv, paths[name], **sampling)
    return paths


def spacy_train(config: Path, output: Path, overrides: Dict[str, object]) -> float:
    """Train in a subprocess (clean state per run); returns wall seconds."""
    args = [sys.executable, "-m", "spacy", "train", str(config), "--output", str(output)]
    for key, value in overrides.items():
        args += [f"--{key}", str(value)]
    start = time.time()
    result = subprocess.run(args, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"spacy train failed ({' '.join(args)}):\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return time.time() - start


def source_model(kind: str, pair: str, seed: int, paths: Dict[str, Path]) -> Path:
    """Source pipelines are shared by every fraction of a pair and seed."""
    output = source_model_path(kind, pair, seed)
    if not output.exists():
        log(f"training {kind} source model for {pair}, seed {seed}")
        spacy_train(SOURCE_CONFIGS[kind], output.parent, {
            "paths.train": paths["source_train"], "paths.dev": paths["source_dev"],
            "training.max_steps": SOURCE_STEPS, "training.eval_frequency": EVAL_FREQUENCY, "system.seed": seed,
        })
    return output


def source_model_path(kind: str, pair: str, seed: int) -> Path:
    return WORK / "source" / f"{kind}_{pair.replace('>', '')}_{seed}" / "model-best"


def system_run(system: str, pair: str, paths: Dict[str, Path], seed: int) -> tuple:
    """(config, overrides) of one target training under the shared step budget."""
    common = {
        "paths.train": paths["train"], "paths.dev": paths["dev"], "system.seed": seed,
        "training.max_steps": TARGET_STEPS, "training.eval_frequency": EVAL_FREQUENCY,
    }
    if system == "spacy_ner_target":
        return BENCH / "configs" / "spacy_ner.cfg", common
    if system == "spacy_ner_transfer":
        return BENCH / "configs" / "spacy_ner_transfer.cfg", {**common, "paths.source_model": source_model("spacy", pair, seed, paths)}
    if system == "baseline":
        return CONFIGS / "baseline.cfg", common
    if system == "dtn_joint":
        return CONFIGS / "dtn.cfg", {**common, "paths.source_train": paths["source_train"],
                                     "corpora.train.source_per_target": 1.0, "training.max_epochs": -1}
    sequential = {**common, "paths.source_model": source_model("dtn", pair, seed, paths)}
    if system == "dtn_sequential":
        return CONFIGS / "dtn.cfg", sequential
    if system == "dtn_trf":
        return CONFIGS / "dtn_trf.cfg", {**common, "paths.source_model": source_model("trf", pair, seed, paths)}
    shared = system.split(":", 1)[1]
    layers = [] if shared == "none" else shared.split("+")
    return CONFIGS / "scheme.cfg", {**sequential, "components.ner.model.shared": json.dumps(layers)}


def add_record(path: Path, record: Dict) -> None:
    """Merge one record into the results file under a lock, so parallel runners keep each other's records."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with (path.parent / ".quality.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        records = srsly.read_json(path) if path.exists() else []
        srsly.write_json(path, records + [record])


def quality(pairs: List[str], fractions: List[float], seeds: List[int], systems: List[str], schemes_at: List[float]) -> None:
    from spacy_dtn.search import all_schemes, corpus_labels, evaluate, scheme_name

    path = RESULTS / "quality.json"
    records = srsly.read_json(path) if path.exists() else []
    done = {(r["pair"], r["fraction"], r["system"], r["seed"]) for r in records}
    plan = []
    for pair, fraction, seed in itertools.product(pairs, fractions, seeds):
        paths = corpora(pair, fraction, seed)
        names = list(systems)
        if fraction in schemes_at:
            same_labels = corpus_labels(paths["source_train"]) == corpus_labels(paths["train"])
            names += [scheme_name(s) for s in all_schemes(same_labels)]
        plan += [(pair, fraction, seed, name, paths) for name in names]
    todo = [p for p in plan if (p[0], p[1], p[3], p[2]) not in done]
    log(f"{len(plan)} runs planned, {len(plan) - len(todo)} done earlier, {len(todo)} to go")
    started = time.time()
    for k, (pair, fraction, seed, system, paths) in enumerate(todo, 1):
        elapsed = time.time() - started
        eta = f", about {elapsed / (k - 1) * (len(todo) - k + 1) / 60:.0f} min left" if k > 1 else ""
        log(f"[{k}/{len(todo)}] {pair} {fraction:.0%} seed {seed} {system} (elapsed {elapsed / 60:.1f} min{eta})")
        config, overrides = system_run(system, pair, paths, seed)
        output = WORK / "target" / pair.replace(">", "") / f"{fraction}_{seed}" / system.replace(":", "_").replace("+", "-")
        seconds = spacy_train(config, output, overrides)
        dev, test = evaluate(output / "model-best", paths["dev"]), evaluate(output / "model-best", paths["test"])
        add_record(path, {
            "pair": pair, "fraction": fraction, "system": system, "seed": seed,
            "dev_f1": dev["f"], "test_f1": test["f"], "test_p": test["p"], "test_r": test["r"],
            "test_per_type": {label: s["f"] for label, s in (test["per_type"] or {}).items()},
            "train_seconds": round(seconds, 1), "threads": threads(),
            "model": str((output / "model-best").relative_to(ROOT)),
        })
        log(f"    dev F1 {dev['f']:.4f}  test F1 {test['f']:.4f}  ({seconds:.0f} s)")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one pair, 10%% only, seed 0 (or --seeds), no schemes")
    parser.add_argument("--schemes", action="store_true", help="with --quick: also every fixed scheme")
    parser.add_argument("--speed", action="store_true", help="also measure speed, memory and size")
    parser.add_argument("--systems", nargs="+", choices=SYSTEMS + OPTIONAL_SYSTEMS, default=SYSTEMS,
                        help="systems to train (default: all but the transformer DTN)")
    parser.add_argument("--seeds", nargs="+", type=int, help="the seeds (default 0 with --quick, else 0 1 2)")
    parser.add_argument("--pairs", nargs="+", choices=list(PAIRS), default=list(PAIRS), help="without --quick: the pairs")
    parser.add_argument("--fractions", nargs="+", type=float, default=FRACTIONS, help="without --quick: the fractions")
    args = parser.parse_args(argv)
    if args.quick:
        quality(["BC5CDR->NCBI-disease"], [0.1], args.seeds or [0], args.systems, [0.1] if args.schemes else [])
    else:
        quality(args.pairs, args.fractions, args.seeds or SEEDS, args.systems, [0.1])
    if args.speed:
        from speed import measure_speed

        measure_speed(RESULTS / "quality.json", RESULTS / "speed.json")
    from write_results import write_results

    write_results(RESULTS, BENCH / "RESULTS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
