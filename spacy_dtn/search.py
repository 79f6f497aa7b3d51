"""The exhaustive search DTN replaces: train every fixed sharing scheme.

Each scheme is one `spacy train` of the given config (configs/scheme.cfg, or
configs/dtn_trf.cfg for the transformer variant) with
`components.ner.model.shared` set (and `gated` emptied, where the
architecture has it), under the same step budget, run by spacy_dtn/runs.py:
finished schemes are skipped on a rerun (results are written after each one),
so a long search can be stopped and resumed.
"""
import argparse
import itertools
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import spacy
from spacy import util
from spacy.tokens import DocBin

from .plan import SHARABLE_LAYERS
from .runs import Run, Scores, folder_name, log, run_all
from .tagger_model import transfer_spec


def scheme_name(shared: Sequence[str]) -> str:
    return "scheme:" + ("+".join(shared) if shared else "none")


def all_schemes(output_sharable: bool, layers: Sequence[str] = SHARABLE_LAYERS) -> List[List[str]]:
    """Every subset of the sharable layers; `output` only with equal label sets."""
    layers = [l for l in layers if output_sharable or l != "output"]
    return [list(c) for n in range(len(layers) + 1) for c in itertools.combinations(layers, n)]


def _ner_model_config(config: Path) -> Dict[str, object]:
    return util.load_config(config, interpolate=True)["components"]["ner"]["model"]


def _layers(model_config: Dict[str, object]) -> List[str]:
    """The sharable layers of an architecture config (built, not initialized)."""
    return list(transfer_spec(util.registry.resolve({"model": model_config})["model"]).plan)


def scheme_overrides(config: Path) -> Dict[str, object]:
    """The config's sharable layers, and the overrides that make it a fixed
    scheme (no gated layers)."""
    model_config = _ner_model_config(config)
    fixed = {"components.ner.model.gated": []} if "gated" in model_config else {}
    return {"layers": _layers(model_config), "fixed": fixed}


def corpus_labels(path: Path) -> List[str]:
    vocab = spacy.blank("en").vocab
    return sorted({ent.label_ for doc in DocBin().from_disk(path).get_docs(vocab) for ent in doc.ents})


def run_search(
    config: Path,
    output: Path,
    results_path: Path,
    dev: Path,
    test: Path,
    overrides: Dict[str, object],
    source_labels: List[str],
    target_labels: List[str],
    use_gpu: int = -1,
    schemes: Optional[List[List[str]]] = None,
) -> List[Dict[str, object]]:
    """Train every scheme not in `results_path` yet; returns all results, best dev F1 first."""
    scheme_setup = scheme_overrides(config)
    if schemes is None:
        schemes = all_schemes(source_labels == target_labels, scheme_setup["layers"])

    def scheme_run(shared: List[str]) -> Run:
        name = scheme_name(shared)
        fixed = {**overrides, **scheme_setup["fixed"], "components.ner.model.shared": shared}
        return Run({"system": name, "shared": shared}, name, output / folder_name(name), lambda: (config, fixed), dev, test)

    started = time.time()
    results = run_all([scheme_run(shared) for shared in schemes], results_path, scheme_scores, use_gpu)
    results.sort(key=lambda r: -r["dev"]["f"])
    log(f"Searched {len(schemes)} schemes in {(time.time() - started) / 60:.1f} min. Best on dev:")
    for r in results[:5]:
        print(f"  {r['system']:<45} dev F1 {r['dev']['f']:.4f}  test F1 {r['test']['f']:.4f}")
    return results


def scheme_scores(run: Run, dev: Scores, test: Scores, seconds: float) -> Dict[str, object]:
    return {"dev": dev, "test": test, "train_seconds": round(seconds, 1)}


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spacy_dtn search", description=__doc__)
    parser.add_argument("config", type=Path, help="configs/scheme.cfg, or configs/dtn_trf.cfg (transformer variant)")
    parser.add_argument("output", type=Path, help="folder for the trained schemes")
    parser.add_argument("results", type=Path, help="JSON file of per-scheme dev and test scores")
    parser.add_argument("--train", type=Path, required=True, help="target training corpus (.spacy)")
    parser.add_argument("--dev", type=Path, required=True, help="target dev corpus (.spacy)")
    parser.add_argument("--test", type=Path, required=True, help="target test corpus (.spacy)")
    parser.add_argument("--source-model", type=Path, help="pipeline trained with configs/source.cfg (sequential)")
    parser.add_argument("--source-train", type=Path, help="source corpus (.spacy) for joint training")
    parser.add_argument("--source-per-target", type=float, default=0.0)
    parser.add_argument("--max-steps", type=int, required=True)
    parser.add_argument("--eval-frequency", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gpu-id", type=int, default=-1)
    args = parser.parse_args(argv)
    if args.source_model is None and args.source_train is None:
        parser.error("give --source-model (sequential) or --source-train (joint), or both")
    source_labels = (
        sorted(spacy.load(args.source_model).get_pipe("ner").labels)
        if args.source_model
        else corpus_labels(args.source_train)
    )
    overrides = {
        "paths.train": str(args.train),
        "paths.dev": str(args.dev),
        "paths.source_model": str(args.source_model) if args.source_model else None,
        "paths.source_train": str(args.source_train) if args.source_train else None,
        "corpora.train.source_per_target": args.source_per_target,
        "training.max_steps": args.max_steps,
        "training.eval_frequency": args.eval_frequency,
        "system.seed": args.seed,
        "training.max_epochs": -1 if args.source_per_target > 0 else 0,
        "training.logger.progress_bar": False,
    }
    args.results.parent.mkdir(parents=True, exist_ok=True)
    run_search(
        args.config, args.output, args.results, args.dev, args.test, overrides,
        source_labels, corpus_labels(args.train), use_gpu=args.gpu_id,
    )
    return 0
