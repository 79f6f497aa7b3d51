"""Calibration of entity confidence: expected calibration error (ECE), a
reliability diagram, and a temperature fitted on dev data.

Policy:
- an outcome is one predicted entity: its confidence, and whether it is
  exactly right (same character span and label as a gold entity);
- ECE uses 10 equal-width confidence bins: the count-weighted mean gap
  between a bin's mean confidence and the fraction of its entities that are
  right;
- the temperature divides the CRF's scores (the entities stay the same) and
  is fitted on dev data only, by minimising the log loss of the outcomes over
  log T (golden-section search); it is stored as the component's
  `confidence_temperature` in the saved pipeline's config.

    python -m spacy_dtn calibrate training/dtn/model-best corpus/target/dev.spacy \\
        training/dtn/model-calibrated --test corpus/target/test.spacy \\
        --metrics metrics/calibration.json --plot reports/reliability.png
"""
import argparse
import math
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import spacy
import srsly
from spacy.language import Language
from spacy.tokens import Doc, DocBin

from .ner_component import DynamicTransferNER

BINS = 10
# The search interval of the temperature and its precision (in log T).
LOG_T_RANGE = (math.log(0.1), math.log(10.0))
LOG_T_TOLERANCE = 1e-3
EPSILON = 1e-6
Outcome = Tuple[float, bool]


def expected_calibration_error(outcomes: Sequence[Outcome], bins: int = BINS) -> float:
    """Count-weighted mean |accuracy - confidence| over equal-width bins."""
    return sum(len(b) * abs(acc - conf) for b, conf, acc in reliability_bins(outcomes, bins)) / len(outcomes)


def reliability_bins(outcomes: Sequence[Outcome], bins: int = BINS) -> List[Tuple[List[Outcome], float, float]]:
    """Per non-empty bin: its outcomes, mean confidence and accuracy."""
    grouped: List[List[Outcome]] = [[] for _ in range(bins)]
    for conf, right in outcomes:
        grouped[min(int(conf * bins), bins - 1)].append((conf, right))
    return [(b, sum(c for c, _ in b) / len(b), sum(r for _, r in b) / len(b)) for b in grouped if b]


def log_loss(outcomes: Sequence[Outcome]) -> float:
    total = 0.0
    for conf, right in outcomes:
        p = min(max(conf, EPSILON), 1 - EPSILON)
        total -= math.log(p if right else 1 - p)
    return total / len(outcomes)


def dtn_component(nlp: Language, name: Optional[str] = None) -> DynamicTransferNER:
    """The pipeline's dtn_ner component (the only one, or the one named)."""
    found = [n for n, pipe in nlp.pipeline if isinstance(pipe, DynamicTransferNER) and name in (None, n)]
    if len(found) != 1:
        raise ValueError(
            f"Expected one dtn_ner component{f' named {name!r}' if name else ''} in the pipeline, found "
            f"{found or 'none'} (components: {nlp.pipe_names}): pass --component."
        )
    return nlp.get_pipe(found[0])


class CalibrationSet:
    """Gold docs tagged once; outcomes at any temperature re-score the same
    entities (the temperature does not change what is decoded)."""

    def __init__(self, nlp: Language, ner: DynamicTransferNER, gold: Iterable[Doc]) -> None:
        gold = list(gold)
        self.ner = ner
        self.docs = list(nlp.pipe((g.text for g in gold), disable=[ner.name]))
        self.gold = [{(e.start_char, e.end_char, e.label_) for e in g.ents} for g in gold]

    def outcomes(self, temperature: float) -> List[Outcome]:
        saved = (self.ner.confidence, self.ner.confidence_temperature)
        self.ner.confidence, self.ner.confidence_temperature = True, temperature
        try:
            predictions = self.ner.predict(self.docs)
        finally:
            self.ner.confidence, self.ner.confidence_temperature = saved
        return [
            (score, (doc[s:e].start_char, doc[s:e].end_char, label) in gold)
            for doc, found, gold in zip(self.docs, predictions, self.gold)
            for s, e, label, score in found
        ]


def golden_section(f: Callable[[float], float], low: float, high: float, tolerance: float) -> float:
    """The minimum of a unimodal f on [low, high]."""
    ratio = (math.sqrt(5) - 1) / 2
    a, b = high - ratio * (high - low), low + ratio * (high - low)
    fa, fb = f(a), f(b)
    while high - low > tolerance:
        if fa < fb:
            high, b, fb = b, a, fa
            a = high - ratio * (high - low)
            fa = f(a)
        else:
            low, a, fa = a, b, fb
            b = low + ratio * (high - low)
            fb = f(b)
    return (low + high) / 2


def fit_temperature(dev: CalibrationSet) -> Optional[float]:
    """The temperature that minimises the dev log loss of the outcomes; None
    when the pipeline finds no entity in the dev data (nothing to fit)."""
    if not dev.outcomes(1.0):
        return None
    return math.exp(golden_section(lambda log_t: log_loss(dev.outcomes(math.exp(log_t))), *LOG_T_RANGE, LOG_T_TOLERANCE))


def calibration_report(sets: Dict[str, CalibrationSet], temperatures: Dict[str, float]) -> Dict[str, Dict]:
    """ECE, log loss and the reliability bins per corpus and temperature."""
    report: Dict[str, Dict] = {}
    for corpus, data in sets.items():
        for setting, temperature in temperatures.items():
            outcomes = data.outcomes(temperature)
            result = {"temperature": temperature, "entities": len(outcomes), "ece": None, "log_loss": None,
                      "accuracy": None, "bins": []}
            if outcomes:
                result.update(
                    ece=expected_calibration_error(outcomes),
                    log_loss=log_loss(outcomes),
                    accuracy=sum(r for _, r in outcomes) / len(outcomes),
                    bins=[{"confidence": c, "accuracy": a, "count": len(b)} for b, c, a in reliability_bins(outcomes)],
                )
            report.setdefault(corpus, {})[setting] = result
    return report


def reliability_diagram(report: Dict[str, Dict], path: Path) -> None:
    """Accuracy against confidence per bin, one panel per corpus."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(report), figsize=(4.5 * len(report), 4.2), squeeze=False)
    for ax, (corpus, settings) in zip(axes[0], report.items()):
        ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect")
        for setting, result in settings.items():
            bins = result["bins"]
            ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], marker="o",
                    label=f"{setting} (T={result['temperature']:.2f}, ECE={_number(result['ece'])})")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("confidence (bin mean)")
        ax.set_ylabel("fraction exactly right")
        ax.set_title(f"{corpus}: {settings[next(iter(settings))]['entities']} entities")
        ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _number(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.4f}"


def read_gold(path: Path, nlp: Language) -> List[Doc]:
    return list(DocBin().from_disk(path).get_docs(nlp.vocab))


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m spacy_dtn calibrate",
        description="Measure the calibration of entity confidence, fit a temperature on dev data and "
        "save the pipeline with it.",
    )
    parser.add_argument("model", help="trained pipeline (folder or package name)")
    parser.add_argument("dev", type=Path, help="gold .spacy corpus the temperature is fitted on")
    parser.add_argument("output", type=Path, help="folder to save the calibrated pipeline to")
    parser.add_argument("--test", type=Path, help="gold .spacy corpus to report calibration on (never fitted on)")
    parser.add_argument("--component", help="name of the dtn_ner component (default: the only one)")
    parser.add_argument("--metrics", type=Path, help="write ECE, log loss and reliability bins here (JSON)")
    parser.add_argument("--plot", type=Path, help="write the reliability diagram here (PNG)")
    args = parser.parse_args(argv)
    nlp = spacy.load(args.model)
    ner = dtn_component(nlp, args.component)
    corpora = {"dev": args.dev, **({"test": args.test} if args.test else {})}
    sets = {name: CalibrationSet(nlp, ner, read_gold(path, nlp)) for name, path in corpora.items()}
    before = ner.confidence_temperature
    fitted = fit_temperature(sets["dev"])
    if fitted is None:
        print(f"warning: no entity predicted in {args.dev}: nothing to fit; the temperature stays {before}")
        fitted = before
    report = calibration_report(sets, {"before": before, "after": fitted})
    tuned = spacy.load(args.model, config={f"components.{ner.name}.confidence_temperature": fitted})
    tuned.to_disk(args.output)
    if args.metrics:
        args.metrics.parent.mkdir(parents=True, exist_ok=True)
        srsly.write_json(args.metrics, report)
    if args.plot:
        reliability_diagram(report, args.plot)
    for corpus, settings in report.items():
        print(f"{corpus}: " + ", ".join(f"ECE {s} (T={r['temperature']:.3f}) = {_number(r['ece'])}" for s, r in settings.items()))
    print(f"Saved the pipeline with confidence_temperature = {fitted:.4f} to {args.output}")
    return 0
