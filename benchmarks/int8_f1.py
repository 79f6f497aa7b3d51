"""What int8 serving (dtn_ner's `quantize = true`) costs in entity F1: dev and
test F1 of each trained pipeline, loaded in float and in int8, on the grid's
NCBI-disease dev and test sets. Dev decides whether a default turns it on.

    python benchmarks/int8_f1.py benchmarks/results/trf_depth.json PIPELINE [PIPELINE ...]
"""
import json
import sys
from pathlib import Path
from typing import Dict, List

if not __package__:  # run as a script: the package it belongs to must be importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import spacy

from spacy_dtn.runs import scores_on

CORPUS = Path(__file__).resolve().parent / "work" / "corpus" / "BC5CDR-NCBI-disease"


def entity_f1(pipeline: str, quantize: bool) -> Dict[str, object]:
    nlp = spacy.load(pipeline, config={"components": {"ner": {"quantize": quantize}}})
    row: Dict[str, object] = {"pipeline": pipeline, "quantize": quantize}
    for split in ("dev", "test"):
        row[f"{split}_f1"] = round(scores_on(nlp, CORPUS / f"target_{split}.spacy")["f"] * 100, 2)
    return row


def main(output: str, pipelines: List[str]) -> None:
    rows = [entity_f1(path, quantize) for path in pipelines for quantize in (False, True)]
    Path(output).write_text(json.dumps(rows, indent=1), encoding="utf8")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
