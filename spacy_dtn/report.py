"""The project's report: test scores of every system, the learned gates, plots.

Inputs are what the workflow already wrote: `spacy evaluate` JSON per system,
the trained pipeline's meta.json (dev F1, gates), the JSON lines spaCy's
ConsoleLogger.v3 writes per evaluation (`output_file`: the gates over
training) and, for the `search` workflow, the per-scheme results of
`python -m spacy_dtn search`.
"""
import argparse
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import srsly

from .figures import saved_figure
from .gate_scores import UNMOVED, saved_gate_start, saved_gates
from .plan import GATE_SCORE_PREFIX
from .tables import markdown_table

NO_GATE = "—"
DPI = 100


def system_record(name: str, model_dir: Path, metrics: Path) -> Dict[str, object]:
    scores = srsly.read_json(metrics)
    performance = srsly.read_json(model_dir / "meta.json").get("performance", {})
    gates, gate_notes = saved_gates(model_dir)
    return {
        "system": name,
        "dev": {"f": performance.get("ents_f")},
        "test": {
            "p": scores["ents_p"],
            "r": scores["ents_r"],
            "f": scores["ents_f"],
            "per_type": scores.get("ents_per_type") or {},
        },
        "gates": gates,
        "gate_notes": gate_notes,
        "gate_start": saved_gate_start(model_dir) if gates else None,
    }


def gate_layers(systems: List[Dict]) -> List[str]:
    """Layers with a gate in any system, then those with a note, in their order
    (the two architectures have different layers)."""
    return list(dict.fromkeys([layer for s in systems for layer in s["gates"]] +
                              [layer for s in systems for layer in s["gate_notes"]]))


def _pct(value: Optional[float]) -> str:
    return "-" if value is None else f"{100 * value:.2f}"


def _gate(system: Dict, layer: str) -> str:
    """The gate, else why there is none, else a dash: the layer is not gated in this system."""
    if layer in system["gates"]:
        gate, start = system["gates"][layer], system.get("gate_start")
        return f"{gate:.3f}" + ("*" if start is not None and abs(gate - start) < UNMOVED else "")
    return system["gate_notes"].get(layer, NO_GATE)


def markdown(systems: List[Dict], search: List[Dict]) -> str:
    lines = ["# Results", "", "Test-set entity scores (%) of every system trained by the workflow; "
             "dev F1 is what selected the saved model.", ""]
    lines += markdown_table(["system", "dev F1", "test P", "test R", "test F1"], [
        [s["system"], _pct(s["dev"]["f"]), _pct(s["test"]["p"]), _pct(s["test"]["r"]), _pct(s["test"]["f"])]
        for s in systems])
    labels = sorted({label for s in systems for label in s["test"]["per_type"]})
    if labels:
        lines += ["", "## Test F1 per entity type", ""]
        lines += markdown_table(["system", *labels], [
            [s["system"], *(_pct(s["test"]["per_type"].get(label, {}).get("f")) for label in labels)] for s in systems])
    layers = gate_layers(systems)
    if layers:
        lines += ["", "## Learned gates", "",
                  "Mean gate per layer on the dev set: how much of the layer the target takes from the "
                  f"shared (source-trained) copy, 1 = shared, 0 = private. {NO_GATE}: the system does not "
                  f"gate the layer. *: within {UNMOVED} of where the gates started, i.e. not moved by the "
                  "data: the start set that layer's mix (README, \"What the gates say\").", ""]
        lines += markdown_table(["system", "start", *layers], [
            [s["system"], NO_GATE if s.get("gate_start") is None else f"{s['gate_start']:.3f}",
             *(_gate(s, layer) for layer in layers)] for s in systems])
    if search:
        ranked = sorted(search, key=lambda r: -r["dev"]["f"])
        lines += ["", "## Exhaustive search over fixed sharing schemes", "",
                  f"{len(search)} schemes, ranked by dev F1; the DTN rows above come from one training.", ""]
        lines += markdown_table(["rank", "scheme", "dev F1", "test F1", "train s"], [
            [rank, r["system"], _pct(r["dev"]["f"]), _pct(r["test"]["f"]), r.get("train_seconds", "-")]
            for rank, r in enumerate(ranked, 1)])
    return "\n".join(lines) + "\n"


def gate_trajectories(log: Path) -> Dict[str, List[Tuple[int, float]]]:
    """(step, mean dev gate) per gated layer from a training log's JSON lines
    (spaCy's logger writes scores as percentages)."""
    curves: Dict[str, List[Tuple[int, float]]] = {}
    for line in srsly.read_jsonl(log):
        for name, value in line["scores"].items():
            if name.startswith(GATE_SCORE_PREFIX) and value is not None:
                curves.setdefault(name[len(GATE_SCORE_PREFIX):], []).append((line["step"], value / 100))
    # A layer without a gate scores 0 throughout: not a trajectory.
    return {layer: curve for layer, curve in curves.items() if any(value for _, value in curve)}


def plot_trajectories(logs: List[Tuple[str, Path]], output: Path) -> List[Path]:
    """One panel per system: each gated layer's mean dev gate at every evaluation."""
    written = []
    for name, log in logs:
        curves = gate_trajectories(log)
        if not curves:
            continue
        written.append(output / f"gates_over_training_{name}.png")
        with saved_figure(written[-1], (7, 3.5), DPI) as ax:
            for layer, curve in curves.items():
                ax.plot([step for step, _ in curve], [value for _, value in curve], marker=".", label=layer)
            ax.set_ylim(0, 1)
            ax.set_xlabel("training step")
            ax.set_ylabel("mean dev gate (1 = shared)")
            ax.set_title(f"Gates over training: {name}")
            ax.legend(fontsize=8)
    return written


def plots(systems: List[Dict], search: List[Dict], output: Path) -> List[Path]:
    written = [output / "f1.png"]
    rows = [(s["system"], s["test"]["f"]) for s in systems]
    rows += [(r["system"], r["test"]["f"]) for r in sorted(search, key=lambda r: -r["dev"]["f"])]
    with saved_figure(written[-1], (8, 0.35 * len(rows) + 1.2), DPI) as ax:
        ax.barh([name for name, _ in rows][::-1], [100 * f for _, f in rows][::-1], color="tab:blue")
        ax.set_xlabel("test entity F1 (%)")
        ax.set_title("F1 per system")
    gated = [s for s in systems if s["gates"]]
    if gated:
        layers = list(dict.fromkeys(layer for s in gated for layer in s["gates"]))
        written.append(output / "gates.png")
        with saved_figure(written[-1], (7, 3.5), DPI) as ax:
            width = 0.8 / len(gated)
            for i, s in enumerate(gated):
                # A layer the system does not gate gets no bar (not a bar at 0, which reads as "private").
                shown = [(j, s["gates"][layer]) for j, layer in enumerate(layers) if layer in s["gates"]]
                ax.bar([j + i * width for j, _ in shown], [gate for _, gate in shown], width, label=s["system"])
            ax.set_xticks([j + 0.4 - width / 2 for j in range(len(layers))])
            ax.set_xticklabels(layers, rotation=20)
            ax.set_ylim(0, 1)
            ax.set_ylabel("mean gate (1 = shared)")
            ax.set_title("Learned gate per layer")
            ax.legend()
    return written


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spacy_dtn report", description=__doc__)
    parser.add_argument("output", type=Path, help="folder for results.md, results.json and the plots")
    parser.add_argument(
        "--system", nargs=3, action="append", default=[], metavar=("NAME", "MODEL_DIR", "METRICS_JSON"),
        help="a trained system: its name, pipeline folder and `spacy evaluate` output",
    )
    parser.add_argument("--search", type=Path, help="results of `python -m spacy_dtn search`")
    parser.add_argument(
        "--training-log", nargs=2, action="append", default=[], metavar=("NAME", "JSONL"),
        help="a system's training log ([training.logger] output_file of spacy.ConsoleLogger.v3): plots its gates over training",
    )
    args = parser.parse_args(argv)
    missing = [p for _, m, j in args.system for p in (Path(m) / "meta.json", Path(j)) if not p.exists()]
    missing += [Path(log) for _, log in args.training_log if not Path(log).exists()]
    if args.search is not None and not args.search.exists():
        missing.append(args.search)
    if missing:
        parser.error(f"missing inputs: {', '.join(map(str, missing))}; run the workflow steps that write them")
    systems = [system_record(name, Path(model), Path(metrics)) for name, model, metrics in args.system]
    search = srsly.read_json(args.search) if args.search else []
    args.output.mkdir(parents=True, exist_ok=True)
    srsly.write_json(args.output / "results.json", {"systems": systems, "search": search})
    images = plots(systems, search, args.output)
    images += plot_trajectories([(name, Path(log)) for name, log in args.training_log], args.output)
    figures = "\n## Figures\n\n" + "\n".join(f"![{image.stem}]({image.name})" for image in images) + "\n"
    (args.output / "results.md").write_text(markdown(systems, search) + figures, encoding="utf8")
    print(f"Wrote {args.output / 'results.md'}, results.json and {', '.join(p.name for p in images)}")
    return 0
