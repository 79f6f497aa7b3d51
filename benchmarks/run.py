"""Benchmarks: DTN against fixed sharing schemes, the target-only baseline and
spaCy's own `ner`, on the same splits, budget rule (grid.py: until dev stops
improving) and dev-set model selection.

    python -m benchmarks.run --quick      # BC5CDR->NCBI-disease, 10%, seed 0
    python -m benchmarks.run              # both pairs, 5/10/25/100%, 3 seeds, schemes at 10%
    python -m benchmarks.run --quick --systems dtn_trf   # the transformer DTN row (.[transformers])
    python -m benchmarks.run --quick --schemes --seeds 0 1 2   # the 10% setting over 3 seeds
    python -m benchmarks.run --fractions 0.1 --seeds 1 --no-schemes   # both pairs' 10% systems, seed 1
    python -m benchmarks.run --fractions 0.1 --seeds 1 2 --no-schemes --systems scheme:word_embed+word_lstm   # one scheme, more seeds
    python -m benchmarks.run --quick --systems baseline dtn_sequential --vectors model2vec   # with static vectors (.[vectors])

Every finished run is a record in benchmarks/results/quality.json and is
skipped when the command is run again, so a long run can be resumed.
Runners may share the file: records are merged under a lock. On 2 cores,
split the grid and pin one single-threaded runner to each core, e.g.

    OMP_NUM_THREADS=1 taskset -c 0 python -m benchmarks.run --pairs "BC5CDR->NCBI-disease" &
    OMP_NUM_THREADS=1 taskset -c 1 python -m benchmarks.run --pairs "BC2GM->BioNLP13PC" &

or give both runners the same cells and one shard each (`--shard 1/2`, `--shard 2/2`):
each trains every other planned run. Shards of one pair need its source
pipelines trained already (a first run of the pair trains them), or both would
train them at once.

`--speed` measures inference and training speed, peak memory and model size.
Run from the repository root: `python -m benchmarks.run` or `python benchmarks/run.py`.
"""
import argparse
import itertools
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import srsly

if not __package__:  # run as a script: the package it belongs to must be importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from spacy_dtn.gate_scores import saved_gates
from spacy_dtn.runs import Run, Scores, config_digest, folder_name, log, logged_steps, run_all, train_in_subprocess
from spacy_dtn.search import all_schemes, corpus_labels, scheme_name

from benchmarks.grid import (ALL_PAIRS, BENCH, BUDGET, BUDGET_OVERRIDES, CHECK_PAIRS, CONFIGS, FRACTIONS, LABEL_MAPS, PAIRS, QUICK, RESULTS, ROOT, SCHEME_FRACTION,
                   SEEDS, SOURCE_CONFIGS, SOURCE_DEV_COUNT, SOURCE_SEED, SPACY_READS_VECTORS, VECTOR_METHODS, WORK, corpus_paths,
                   pair_folder, source_model_path, system_config, vectors_folder, vectors_path)
from benchmarks.speed import measure_speed
from benchmarks.write_results import write_results

SYSTEMS = ["spacy_ner_target", "spacy_ner_transfer", "baseline", "dtn_sequential", "dtn_joint"]
# Only on request (--systems): needs pip install -e ".[transformers]" and is ~10x slower on CPU.
OPTIONAL_SYSTEMS = ["dtn_trf"]
GATED_SYSTEMS = ("dtn_sequential", "dtn_joint", "dtn_trf")
# Written beside a source pipeline once its training has ended: the mark that it is whole.
SOURCE_RECORD = "trained.json"


def threads() -> int:
    """Threads a training may use (OMP_NUM_THREADS, else the cores torch would take)."""
    return int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1)


def corpora(pair: str, fraction: float, seed: int) -> Dict[str, Path]:
    """Convert the pair once; the target training set is a seeded fraction."""
    from spacy_dtn.converters import convert

    source, target = ALL_PAIRS[pair]
    paths = corpus_paths(pair, fraction, seed)
    jobs = {
        "source_train": (ROOT / "assets" / source / "train.tsv", {}),
        "source_dev": (ROOT / "assets" / source / "devel.tsv", {"count": SOURCE_DEV_COUNT, "seed": 0}),
        "train": (ROOT / "assets" / target / "train.tsv", {"fraction": fraction, "seed": seed} if fraction < 1 else {}),
        "dev": (ROOT / "assets" / target / "devel.tsv", {}),
        "test": (ROOT / "assets" / target / "test.tsv", {}),
    }
    paths["train"].parent.mkdir(parents=True, exist_ok=True)
    for name, (tsv, sampling) in jobs.items():
        if not paths[name].exists():
            convert("iob", tsv, paths[name], **sampling)
    return paths


def pair_vectors(method: str, pair: str) -> Path:
    """The pair's vectors pipeline (grid.py, Vectors policy): built on first use."""
    output = vectors_path(method, pair)
    if not output.exists():
        text = corpora(pair, 1.0, SOURCE_SEED)
        log(f"building {method} vectors for {pair}")
        subprocess.run([sys.executable, "-m", "spacy_dtn", "vectors", str(output), str(text["source_train"]),
                        str(text["train"]), "--method", method], check=True)
    return output


def vectors_overrides(pair: str, vectors: Optional[str], builds_spacy_tok2vec: bool) -> Dict[str, object]:
    """What a training sets to read the pair's vectors (nothing without them): the
    table, and where the config builds a spaCy tok2vec (not sources it), the flag
    that makes it read the table; a sourced tok2vec reads it as its source did."""
    if not vectors:
        return {}
    return {"paths.vectors": pair_vectors(vectors, pair), **(SPACY_READS_VECTORS if builds_spacy_tok2vec else {})}


def source_model(kind: str, pair: str, paths: Dict[str, Path], vectors: Optional[str] = None) -> Path:
    """Source pipelines are shared by every fraction and seed of a pair (grid.py): trained on first use.
    spaCy writes model-best at every improving evaluation, so only the record
    written after the training ended (SOURCE_RECORD: wall time and steps) marks
    a source as trained; a folder without it was cut off and is trained again."""
    output = source_model_path(kind, pair, vectors)
    record = output.parent / SOURCE_RECORD
    if not record.exists():
        cut_off = " (its earlier training was cut off)" if output.exists() else ""
        log(f"training {kind} source model for {pair}, seed {SOURCE_SEED}, vectors {vectors}{cut_off}")
        seconds = train_in_subprocess(SOURCE_CONFIGS[kind], output.parent, {
            "paths.train": paths["source_train"], "paths.dev": paths["source_dev"], "system.seed": SOURCE_SEED, **BUDGET_OVERRIDES,
            **vectors_overrides(pair, vectors, builds_spacy_tok2vec=kind == "spacy"),
        })
        steps, best_step = logged_steps(output.parent / "train.log")
        srsly.write_json(record, {"train_seconds": round(seconds, 1), "steps": steps, "best_step": best_step})
    return output


def system_run(system: str, pair: str, paths: Dict[str, Path], seed: int,
               vectors: Optional[str] = None) -> Tuple[Path, Dict[str, object]]:
    """(config, overrides) of one target training under the shared budget rule,
    reading the pair's vectors of a method when `vectors` names one."""
    config = system_config(system)
    common = {"paths.train": paths["train"], "paths.dev": paths["dev"], "system.seed": seed, **BUDGET_OVERRIDES,
              **vectors_overrides(pair, vectors, builds_spacy_tok2vec=system == "spacy_ner_target")}
    if system in ("spacy_ner_target", "baseline"):
        return config, common
    if system == "spacy_ner_transfer":
        return config, {**common, "paths.source_model": source_model("spacy", pair, paths, vectors)}
    if system == "dtn_joint":
        return config, {**common, "paths.source_train": paths["source_train"],
                        "corpora.train.source_per_target": 1.0, "training.max_epochs": -1}
    if system == "dtn_trf":
        return config, {**common, "paths.source_model": source_model("trf", pair, paths, vectors)}
    sequential = {**common, "paths.source_model": source_model("dtn", pair, paths, vectors),
                  "initialize.components.ner.label_map": LABEL_MAPS.get(pair, {})}
    if system == "dtn_sequential":
        return config, sequential
    shared = system.split(":", 1)[1]
    layers = [] if shared == "none" else shared.split("+")
    return config, {**sequential, "components.ner.model.shared": layers}


def quality(pairs: List[str], fractions: List[float], seeds: List[int], systems: List[str], schemes_at: List[float],
            shard: str = "1/1", vectors: Optional[str] = None) -> None:
    """Train and score every system of every setting not in results/quality.json yet
    (this runner's shard of them: `runner_shard`)."""
    runs = []
    for pair, fraction, seed in itertools.product(pairs, fractions, seeds):
        paths = corpora(pair, fraction, seed)
        names = list(systems)
        if fraction in schemes_at:
            same_labels = corpus_labels(paths["source_train"]) == corpus_labels(paths["train"])
            names += [scheme_name(s) for s in all_schemes(same_labels)]
        runs += [setting_run(pair, fraction, seed, name, paths, vectors) for name in names]
    run_all(runner_shard(runs, shard), RESULTS / "quality.json", quality_scores)


def runner_shard(runs: List[Run], shard: str) -> List[Run]:
    """Runner k of n (`--shard k/n`, k from 1) takes every n-th planned run from
    its k-th. The plan is the same for every runner given the same arguments,
    so n runners, one per core, never train the same cell, whatever is done."""
    k, _, n = shard.partition("/")
    if not (k.isdigit() and n.isdigit() and 1 <= int(k) <= int(n)):
        raise SystemExit(f"--shard {shard!r}: write it as k/n with 1 <= k <= n, e.g. --shard 2/2 on the second of two cores")
    return list(runs[int(k) - 1 :: int(n)])


def setting_run(pair: str, fraction: float, seed: int, system: str, paths: Dict[str, Path],
                vectors: Optional[str] = None) -> Run:
    """One cell's training; with vectors it is a record and folder of its own (`vectors` in the key)."""
    return Run(
        {"pair": pair, "fraction": fraction, "system": system, "seed": seed, "budget": BUDGET,
         "config": config_digest(system_config(system)), "vectors": vectors},
        f"{pair} {fraction:.0%} seed {seed} {system}" + (f" with {vectors} vectors" if vectors else ""),
        WORK / "target" / BUDGET / pair_folder(pair) / f"{fraction}_{seed}" / vectors_folder(folder_name(system), vectors),
        lambda: system_run(system, pair, paths, seed, vectors),
        paths["dev"], paths["test"],
    )


def quality_scores(run: Run, dev: Scores, test: Scores, seconds: float) -> Dict[str, object]:
    return {
        "dev_f1": dev["f"], "test_f1": test["f"], "test_p": test["p"], "test_r": test["r"],
        "test_per_type": {label: s["f"] for label, s in (test["per_type"] or {}).items()},
        "gates": run_gates(run),
        "train_seconds": round(seconds, 1), "threads": threads(),
        "model": str((run.output / "model-best").relative_to(ROOT)),
    }


def run_gates(run: Run) -> Dict[str, float]:
    """A DTN run's mean dev gate per gated layer (its meta.json); the other systems have none."""
    return saved_gates(run.output / "model-best")[0] if run.key["system"] in GATED_SYSTEMS else {}


def system_name(name: str) -> str:
    """A grid system, or one fixed scheme by its name (`scheme:none`, `scheme:char_embed+word_lstm`)."""
    schemes = {scheme_name(shared) for shared in all_schemes(True)}
    if name in SYSTEMS + OPTIONAL_SYSTEMS or name in schemes:
        return name
    raise argparse.ArgumentTypeError(
        f"{name!r} is not a system: use one of {', '.join(SYSTEMS + OPTIONAL_SYSTEMS)}, or scheme: and the shared "
        "layers joined by + in the order char_embed, char_lstm, word_embed, word_lstm, output (e.g. scheme:word_embed+word_lstm)"
    )


def scheme_fractions(schemes: Optional[bool], quick: bool) -> List[float]:
    """The fractions at which every fixed scheme is trained: the grid's by default, none with --quick."""
    return [SCHEME_FRACTION] if (not quick if schemes is None else schemes) else []


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one pair, 10%% only, seed 0 (or --seeds), no schemes")
    parser.add_argument("--schemes", action=argparse.BooleanOptionalAction, default=None,
                        help="train every fixed scheme at 10%% too (default: yes for the grid, no with --quick)")
    parser.add_argument("--speed", action="store_true", help="also measure speed, memory and size")
    parser.add_argument("--systems", nargs="+", type=system_name, default=SYSTEMS,
                        help="systems to train (default: all but the transformer DTN): "
                             f"{', '.join(SYSTEMS + OPTIONAL_SYSTEMS)}, or one fixed scheme, e.g. scheme:word_embed+word_lstm")
    parser.add_argument("--seeds", nargs="+", type=int, help="the seeds (default 0 with --quick, else 0 1 2)")
    parser.add_argument("--pairs", nargs="+", choices=list(ALL_PAIRS), default=list(PAIRS),
                        help=f"without --quick: the pairs (default: the grid's; {', '.join(CHECK_PAIRS)} only checks the defaults)")
    parser.add_argument("--fractions", nargs="+", type=float, default=FRACTIONS, help="without --quick: the fractions")
    parser.add_argument("--vectors", choices=VECTOR_METHODS,
                        help="every system reads the pair's static vectors built by this method (grid.py, Vectors policy)")
    parser.add_argument("--shard", default="1/1", help="k/n: train every n-th planned run from the k-th (one runner per core)")
    args = parser.parse_args(argv)
    pair, fraction, seed = QUICK
    schemes_at = scheme_fractions(args.schemes, args.quick)
    if args.quick:
        quality([pair], [fraction], args.seeds or [seed], args.systems, schemes_at, args.shard, args.vectors)
    else:
        quality(args.pairs, args.fractions, args.seeds or SEEDS, args.systems, schemes_at, args.shard, args.vectors)
    if args.speed:
        measure_speed(RESULTS / "quality.json", RESULTS / "speed.json")
    write_results(RESULTS, BENCH / "RESULTS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
