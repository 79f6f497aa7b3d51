"""The GPU path of a trained pipeline against its CPU path: the same pipeline
loaded on each, the same documents, compared entity by entity.

    python -m benchmarks.gpu_check training/dtn/model-best corpus/target/test.spacy --gpu-id 0

Policy: the CPU run is the reference. The check fails (exit 1) when the two
disagree on more than --max-entity-diff of the entities (float rounding
differs between devices, so a rare tie may flip), when a confidence differs
by more than --max-confidence-diff, or when the GPU pipeline's weights are not
on the GPU. It prints one JSON object: agreement, the largest confidence
difference, entity F1 of each against the gold entities, and words/s of each
(`nlp.pipe`, the fastest of three passes after a warm one).
"""
import argparse
import json
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple

import spacy
from spacy.language import Language
from spacy.scorer import Scorer
from spacy.tokens import Doc, DocBin
from spacy.training import Example

import spacy_dtn  # noqa: F401  (registers Span._.confidence)

PASSES = 3
Entity = Tuple[int, int, int, str]  # (document, start, end, label)


def timed_pipe(nlp: Language, texts: List[str], batch_size: int) -> Tuple[List[Doc], float]:
    """The documents of the last pass and the fastest pass's words/s, after a warm pass."""
    docs = list(nlp.pipe(texts, batch_size=batch_size))
    words = sum(len(doc) for doc in docs)
    best = float("inf")
    for _ in range(PASSES):
        start = time.perf_counter()
        docs = list(nlp.pipe(texts, batch_size=batch_size))
        best = min(best, time.perf_counter() - start)
    return docs, words / best


def entities(docs: List[Doc]) -> Dict[Entity, float]:
    return {(i, e.start, e.end, e.label_): e._.confidence for i, doc in enumerate(docs) for e in doc.ents}


def weight_devices(nlp: Language) -> Set[str]:
    """The devices of the torch weights under every component's model."""
    devices: Set[str] = set()
    for _, component in nlp.pipeline:
        for node in getattr(getattr(component, "model", None), "walk", lambda: [])():
            module = node.shims[0]._model if node.shims and hasattr(node.shims[0], "_model") else None
            if module is not None and hasattr(module, "parameters"):
                devices |= {p.device.type for p in module.parameters()}
    return devices


def entity_f1(nlp: Language, gold: List[Doc], predicted: List[Doc]) -> float:
    examples = [Example(p, g) for p, g in zip(predicted, gold)]
    return Scorer.score_spans(examples, "ents")["ents_f"] or 0.0


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path)
    parser.add_argument("docs", type=Path, help=".spacy file with gold entities")
    parser.add_argument("--gpu-id", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--max-entity-diff", type=float, default=0.005)
    parser.add_argument("--max-confidence-diff", type=float, default=1e-3)
    args = parser.parse_args(argv)

    cpu_nlp = spacy.load(args.model)
    gold = list(DocBin().from_disk(args.docs).get_docs(cpu_nlp.vocab))
    texts = [doc.text for doc in gold]
    cpu_docs, cpu_wps = timed_pipe(cpu_nlp, texts, args.batch_size)

    spacy.require_gpu(args.gpu_id)
    gpu_nlp = spacy.load(args.model)
    gpu_docs, gpu_wps = timed_pipe(gpu_nlp, texts, args.batch_size)

    cpu_ents, gpu_ents = entities(cpu_docs), entities(gpu_docs)
    differing = set(cpu_ents) ^ set(gpu_ents)
    shared = set(cpu_ents) & set(gpu_ents)
    confidence_diff = max((abs(cpu_ents[e] - gpu_ents[e]) for e in shared), default=0.0)
    devices = sorted(weight_devices(gpu_nlp))
    report = {
        "model": str(args.model), "documents": len(texts),
        "entities_cpu": len(cpu_ents), "entities_gpu": len(gpu_ents), "entities_differing": len(differing),
        "max_confidence_diff": confidence_diff, "gpu_weight_devices": devices,
        "f1_cpu": entity_f1(cpu_nlp, gold, cpu_docs), "f1_gpu": entity_f1(gpu_nlp, gold, gpu_docs),
        "words_per_s_cpu": round(cpu_wps), "words_per_s_gpu": round(gpu_wps),
    }
    print(json.dumps(report, indent=1))
    failures = []
    if len(differing) > args.max_entity_diff * max(len(cpu_ents), 1):
        failures.append(f"{len(differing)} entities differ between CPU and GPU")
    if confidence_diff > args.max_confidence_diff:
        failures.append(f"a confidence differs by {confidence_diff:.2g}")
    if devices != ["cuda"]:
        failures.append(f"the GPU pipeline's torch weights are on {devices}, not cuda")
    if failures:
        sys.exit("GPU check failed: " + "; ".join(failures))


if __name__ == "__main__":
    main()
