"""The exhaustive search DTN replaces: train every fixed sharing scheme.

Each scheme is one `spacy train` of the given config (configs/scheme.cfg, or
configs/dtn_trf.cfg for the transformer variant) with
`components.ner.model.shared` set (and `gated` emptied, where the
architecture has it), under the same step budget. Finished
schemes are skipped on a rerun (results are written after each one), so a
long search can be stopped and resumed.
"""
import argparse
import itertools
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import spacy
import srsly
from spacy import util
from spacy.cli.train import train as spacy_train
from spacy.tokens import DocBin
from spacy.training import Example

from .plan import SHARABLE_LAYERS
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


def sharable_layers(config: Path) -> List[str]:
    """The sharable layers of the `ner` architecture in a config."""
    return _layers(_ner_model_config(config))


def scheme_overrides(config: Path) -> Dict[str, object]:
    """The config's sharable layers, and the overrides that make it a fixed
    scheme (no gated layers)."""
    model_config = _ner_model_config(config)
    fixed = {"components.ner.model.gated": []} if "gated" in model_config else {}
    return {"layers": _layers(model_config), "fixed": fixed}


def corpus_labels(path: Path) -> List[str]:
    vocab = spacy.blank("en").vocab
    return sorted({ent.label_ for doc in DocBin().from_disk(path).get_docs(vocab) for ent in doc.ents})


def evaluate(model: Path, corpus: Path) -> Dict[str, object]:
    nlp = spacy.load(model)
    examples = [Example(nlp.make_doc(d.text), d) for d in DocBin().from_disk(corpus).get_docs(nlp.vocab)]
    scores = nlp.evaluate(examples)
    return {"p": scores["ents_p"], "r": scores["ents_r"], "f": scores["ents_f"], "per_type": scores["ents_per_type"]}


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
    scheme_setup = scheme_overrides(config)
    if schemes is None:
        schemes = all_schemes(source_labels == target_labels, scheme_setup["layers"])
    results = srsly.read_json(results_path) if results_path.exists() else []
    done = {r["system"] for r in results}
    started = time.time()
    trained = 0
    for k, shared in enumerate(schemes, 1):
        name = scheme_name(shared)
        if name in done:
            print(f"[{k}/{len(schemes)}] {name}: done earlier, skipped", flush=True)
            continue
        elapsed = time.time() - started
        remaining = (elapsed / trained) * (len(schemes) - k + 1) if trained else float("nan")
        print(
            f"[{k}/{len(schemes)}] {name}: training (elapsed {elapsed / 60:.1f} min, "
            f"about {remaining / 60:.1f} min left)",
            flush=True,
        )
        model_dir = output / name.replace(":", "_").replace("+", "-")
        t0 = time.time()
        spacy_train(
            config, model_dir, use_gpu=use_gpu,
            overrides={**overrides, **scheme_setup["fixed"], "components.ner.model.shared": shared},
        )
        seconds = time.time() - t0
        best = model_dir / "model-best"
        results.append(
            {
                "system": name,
                "shared": shared,
                "dev": evaluate(best, dev),
                "test": evaluate(best, test),
                "train_seconds": round(seconds, 1),
            }
        )
        srsly.write_json(results_path, results)
        trained += 1
    results.sort(key=lambda r: -r["dev"]["f"])
    print(f"Searched {len(schemes)} schemes in {(time.time() - started) / 60:.1f} min. Best on dev:")
    for r in results[:5]:
        print(f"  {r['system']:<45} dev F1 {r['dev']['f']:.4f}  test F1 {r['test']['f']:.4f}")
    return results


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
