"""What serving in a lower precision costs in entity F1: dev and test F1 of
each trained pipeline, loaded in float32 and with one of dtn_ner's precision
settings (`quantize`: int8; `bfloat16`: the transformer under bfloat16
autocast), on the grid's NCBI-disease dev and test sets. Dev decides whether
a default turns it on.

    python benchmarks/precision_f1.py benchmarks/results/trf_depth.json PIPELINE [PIPELINE ...]
    python benchmarks/precision_f1.py --setting bfloat16 benchmarks/results/trf_bfloat16.json PIPELINE [...]
"""
import argparse
import json
import sys
from pathlib import Path
from typing import Dict, List, Optional

if not __package__:  # run as a script: the package it belongs to must be importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import spacy

from benchmarks.speed import PRECISIONS
from spacy_dtn.runs import scores_on

CORPUS = Path(__file__).resolve().parent / "work" / "corpus" / "BC5CDR-NCBI-disease"


def entity_f1(pipeline: str, setting: str, on: bool) -> Dict[str, object]:
    nlp = spacy.load(pipeline, config={"components": {"ner": {setting: on}}})
    row: Dict[str, object] = {"pipeline": pipeline, setting: on}
    for split in ("dev", "test"):
        row[f"{split}_f1"] = round(scores_on(nlp, CORPUS / f"target_{split}.spacy")["f"] * 100, 2)
    return row


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--setting", choices=PRECISIONS, default="quantize")
    parser.add_argument("output")
    parser.add_argument("pipelines", nargs="+")
    args = parser.parse_args(argv)
    rows = [entity_f1(path, args.setting, on) for path in args.pipelines for on in (False, True)]
    Path(args.output).write_text(json.dumps(rows, indent=1), encoding="utf8")


if __name__ == "__main__":
    main()
