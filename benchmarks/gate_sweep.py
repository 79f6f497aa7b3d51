"""How much each gate matters: the dev F1 of a trained DTN pipeline with one
gated layer's gate held at a constant (0: the target's private copy alone,
1: the shared copy alone, in between: a fixed mix), the other gates as learned.

A layer whose dev F1 hardly changes from 0 to 1 has a flat loss along its
gate: training cannot choose the gate's value, so its read-out reports where
the gate started, not a scheme the data chose (README, "What the gates say").
Dev data only. Records go to results/gates/gate_sweep.json, one per model;
`--table` prints them as a markdown table.

    python -m benchmarks.gate_sweep --dev benchmarks/work/corpus/BC5CDR-NCBI-disease/target_dev.spacy \\
        --models benchmarks/work/gates05/BC5CDR-NCBI-disease/0.1_0/model-best
"""
import argparse
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

if not __package__:  # run as a script: the package it belongs to must be importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import spacy
import srsly
import torch
from spacy.tokens import DocBin
from spacy.training import Example
from torch import Tensor

from spacy_dtn.pytorch_gates import Gate
from spacy_dtn.tables import markdown_table
from spacy_dtn.tagger_model import get_torch_module

from benchmarks.grid import RESULTS

SWEEP = RESULTS / "gates" / "gate_sweep.json"
HELD_VALUES = (0.0, 0.25, 0.5, 0.75, 1.0)


@contextmanager
def held_gate(gate: Gate, value: float) -> Iterator[None]:
    """Within the block the gate mixes its two copies with `value` everywhere."""

    def forward(shared: Tensor, private: Tensor) -> Tuple[Tensor, Tensor]:
        return torch.lerp(private, shared, value), torch.full_like(shared, value)

    gate.forward = forward
    try:
        yield
    finally:
        del gate.forward


def sweep(model: Path, dev: Path) -> Dict[str, object]:
    """The pipeline's dev F1 and mean dev gates as trained, and its dev F1 with
    each gate held at each of HELD_VALUES in turn."""
    nlp = spacy.load(model)
    ner = nlp.get_pipe("ner")
    examples = [Example(nlp.make_doc(doc.text), doc) for doc in DocBin().from_disk(dev).get_docs(nlp.vocab)]
    gates = get_torch_module(ner.model).gates
    held: Dict[str, Dict[str, float]] = {}
    for layer, gate in gates.items():
        held[layer] = {}
        for value in HELD_VALUES:
            with held_gate(gate, value):
                held[layer][str(value)] = nlp.evaluate(examples)["ents_f"]
    learned = ner.gate_values(nlp.pipe(eg.reference.text for eg in examples))
    return {
        "dev": str(dev),
        "dev_f1": nlp.evaluate(examples)["ents_f"],
        "gates": {layer: learned[layer] for layer in gates},
        "dev_f1_with_gate_held_at": held,
    }


def sweep_table(records: Dict[str, Dict]) -> List[str]:
    """One row per model: its dev F1, and per gated layer its mean dev gate as
    trained and the spread of dev F1 (max - min, points) over the held values."""
    layers = sorted({layer for record in records.values() for layer in record["gates"]})
    rows = []
    for model, record in records.items():
        cells = []
        for layer in layers:
            held = record["dev_f1_with_gate_held_at"].get(layer)
            cells.append(f"{record['gates'][layer]:.2f} / {100 * (max(held.values()) - min(held.values())):.1f}"
                         if held else "–")
        rows.append([model, f"{100 * record['dev_f1']:.2f}", *cells])
    return markdown_table(["model", "dev F1", *(f"{layer}: gate / F1 spread" for layer in layers)], rows)


def main(argv: List[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dev", type=Path, help="the target's dev corpus (.spacy)")
    parser.add_argument("--models", type=Path, nargs="*", default=[], help="trained DTN pipelines")
    parser.add_argument("--table", action="store_true", help="print the recorded sweeps as a markdown table")
    args = parser.parse_args(argv)
    if args.models and not args.dev:
        parser.error("--models needs --dev, the target's dev corpus")
    torch.set_num_threads(1)
    for model in args.models:
        record = sweep(model, args.dev)
        records = srsly.read_json(SWEEP) if SWEEP.exists() else {}
        records[str(model)] = record
        srsly.write_json(SWEEP, records)
        print(model, f"dev F1 {record['dev_f1']:.4f}", record["dev_f1_with_gate_held_at"], flush=True)
    if args.table:
        print("\n".join(sweep_table(srsly.read_json(SWEEP))))


if __name__ == "__main__":
    main(sys.argv[1:])
