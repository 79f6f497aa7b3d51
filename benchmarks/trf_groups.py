"""How many segments the transformer should read per call (transformer_model.
SEGMENTS_PER_CALL): for each group size, the wordpiece positions the
transformer computes (real and padded) and the words/s of `nlp.pipe` over a
corpus's texts, in float32 and with `bfloat16 = true`. Sizes are chosen on the
dev texts; predictions do not depend on the size.

    OMP_NUM_THREADS=1 taskset -c 0 python benchmarks/trf_groups.py PIPELINE DEV.spacy OUT.json
"""
import argparse
import json
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

if not __package__:  # run as a script: the package it belongs to must be importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import spacy
from spacy.tokens import DocBin

from spacy_dtn import transformer_model
from spacy_dtn.tagger_model import encoder_shims

ONE_CALL = 10**9  # every segment of a tagger's pass in one call: the code before groups
SIZES = (4, 8, 16, 32, 64, ONE_CALL)


def positions_counter(nlp: spacy.Language) -> Dict[str, int]:
    """Counts, from now on, the positions the transformer computes and how many were real."""
    counts = {"positions": 0, "real": 0}
    (encoder,) = encoder_shims(nlp.get_pipe("ner").model)

    def count(module, args, kwargs) -> None:
        mask = kwargs["attention_mask"]
        counts["positions"] += mask.numel()
        counts["real"] += int(mask.sum())

    encoder._model.register_forward_pre_hook(count, with_kwargs=True)
    return counts


def measure(pipeline: str, texts: List[str], words: int, bfloat16: bool, rounds: int) -> List[Dict]:
    nlp = spacy.load(pipeline, config={"components": {"ner": {"bfloat16": bfloat16}}})
    counts = positions_counter(nlp)
    list(nlp.pipe(texts[:200]))  # warm
    rows, default = [], transformer_model.SEGMENTS_PER_CALL
    try:
        for size in SIZES:
            transformer_model.SEGMENTS_PER_CALL = size
            counts.update(positions=0, real=0)
            seconds = []
            for _ in range(rounds):
                start = time.perf_counter()
                list(nlp.pipe(texts, batch_size=256))
                seconds.append(time.perf_counter() - start)
            rows.append({"segments_per_call": "one call per pass" if size == ONE_CALL else size, "bfloat16": bfloat16,
                         "words_per_s": round(words / min(seconds)), "positions": counts["positions"] // rounds,
                         "real_positions": counts["real"] // rounds})
            print(json.dumps(rows[-1]), flush=True)
    finally:
        transformer_model.SEGMENTS_PER_CALL = default
    return rows


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pipeline")
    parser.add_argument("corpus", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--rounds", type=int, default=2, help="passes per size; the fastest counts")
    args = parser.parse_args(argv)
    docs = list(DocBin().from_disk(args.corpus).get_docs(spacy.blank("en").vocab))
    texts, words = [doc.text for doc in docs], sum(len(doc) for doc in docs)
    rows = [row for bfloat16 in (False, True) for row in measure(args.pipeline, texts, words, bfloat16, args.rounds)]
    args.output.write_text(json.dumps(rows, indent=1), encoding="utf8")


if __name__ == "__main__":
    main()
