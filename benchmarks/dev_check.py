"""Dev checks of a candidate default: one grid system trained on one cell
(pair, target fraction, seed) with extra config overrides, under the grid's
budget rule and from the grid's source pipelines, recorded in
results/dev_checks.json as a series of runs (spacy_dtn/runs.py: resumable; a
check already recorded under the same name, overrides, system, pair,
fraction and seed is skipped).

Defaults are chosen on the dev sets of both shipped pairs (never on test): a
choice reads `dev_f1`. `test_f1` is kept so that the setting finally chosen
can be reported without training it again. The grid's own record of the same
cell (benchmarks/results/quality.json) is the run without the overrides.

    python -m benchmarks.dev_check --name shared_lr_0.3 --pair "BC5CDR->NCBI-disease" \\
        --fraction 0.25 --seeds 0 1 --set components.ner.model.@architectures=spacy_dtn.BiLSTMTransferTagger.v2 \\
        components.ner.model.shared_learn_rate_scale=0.3
"""
import argparse
import sys
from pathlib import Path
from typing import Dict, List, Optional

if not __package__:  # run as a script: the package it belongs to must be importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from spacy_dtn.gate_scores import saved_gates
from spacy_dtn.runs import Record, Run, Scores, run_all

from benchmarks.grid import ALL_PAIRS, RESULTS, VECTOR_METHODS, WORK, pair_folder, vectors_folder
from benchmarks.run import GATED_SYSTEMS, OPTIONAL_SYSTEMS, SYSTEMS, corpora, system_run

CHECKS = RESULTS / "dev_checks.json"


def parse_overrides(settings: List[str]) -> Dict[str, str]:
    """`section.key=value` pairs, passed to `spacy train` as `--section.key value`."""
    pairs = [setting.split("=", 1) for setting in settings]
    bad = [setting for setting, pair in zip(settings, pairs) if len(pair) != 2 or not pair[0]]
    if bad:
        raise SystemExit(f"--set {bad[0]!r}: write it as section.key=value, e.g. training.optimizer.learn_rate=0.001")
    return dict(pairs)


def check_run(name: str, system: str, pair: str, fraction: float, seed: int, extra: Dict[str, str],
              vectors: Optional[str] = None) -> Run:
    """The grid's run of the cell (benchmarks.run.system_run) with `extra` on top of its overrides."""
    paths = corpora(pair, fraction, seed)

    def prepare():
        config, overrides = system_run(system, pair, paths, seed, vectors)
        return config, {**overrides, **extra}

    return Run(
        {"name": name, "overrides": extra, "system": system, "pair": pair, "fraction": fraction, "seed": seed,
         "vectors": vectors},
        f"{name}: {pair} {fraction:.0%} seed {seed} {system} with {extra}",
        WORK / "dev_checks" / name / pair_folder(pair) / f"{fraction}_{seed}" / vectors_folder(system, vectors),
        prepare, paths["dev"], paths["test"],
    )


def check_scores(run: Run, dev: Scores, test: Scores, seconds: float) -> Record:
    return {"dev_f1": dev["f"], "test_f1": test["f"], "train_seconds": round(seconds, 1),
            "gates": saved_gates(run.output / "model-best")[0] if run.key["system"] in GATED_SYSTEMS else {}}


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", required=True, help="the candidate's name (its records and output folder)")
    parser.add_argument("--system", choices=SYSTEMS + OPTIONAL_SYSTEMS, default="dtn_sequential")
    parser.add_argument("--pair", choices=list(ALL_PAIRS), required=True)
    parser.add_argument("--fraction", type=float, required=True)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", help="config overrides")
    parser.add_argument("--vectors", choices=VECTOR_METHODS, help="read the pair's static vectors (grid.py)")
    args = parser.parse_args(argv)
    extra = parse_overrides(args.set)
    runs = [check_run(args.name, args.system, args.pair, args.fraction, seed, extra, args.vectors) for seed in args.seeds]
    run_all(runs, CHECKS, check_scores)
    return 0


if __name__ == "__main__":
    sys.exit(main())
