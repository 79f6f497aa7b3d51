"""Entity F1 on text written in capitals: the grid's corpora are in mixed
case, a hospital's notes often are not. Dev sentences are scored three ways:
as they are (one doc each, as the grid scores them), every one upper-cased,
and joined by line breaks into notes of `--sentences` of which a seeded
`--share` are upper-cased (sections in capitals), read with and without
spaCy's sentencizer before the tagger (without one, a note is read in
windows of up to `max_segment_length` tokens, mixed case and capitals
together). Each with the tagger's `lowercase_capitals` off and on (a pipeline
without dtn_ner, spaCy's `ner`, as it is). F1 is exact on character offsets
and label (line_breaks.scores).

    python benchmarks/capitals.py PIPELINE OUT.json [--dev DEV.spacy]
"""
import random
import sys
from pathlib import Path
from typing import Dict, List, Optional

if not __package__:  # run as a script: the package it belongs to must be importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import spacy
from spacy.tokens import Doc, DocBin

from benchmarks.line_breaks import SENTENCIZERS, Note, joined_notes, notes_parser, scores, write_result


def upper_cased(text: str) -> str:
    """The text in capitals; one whose length would change ("ß" -> "SS") stays as it is."""
    return text.upper() if len(text.upper()) == len(text) else text


def notes_with_capitals(docs: List[Doc], sentences: int, share: float, seed: int) -> List[Note]:
    """Notes of `sentences` docs, one a line, a seeded `share` of the lines upper-cased."""
    rng = random.Random(seed)
    notes = []
    for text, gold in joined_notes(docs, "\n", sentences):
        lines = [upper_cased(line) if rng.random() < share else line for line in text.split("\n")]
        notes.append(("\n".join(lines), gold))
    return notes


def layouts(docs: List[Doc], sentences: int, share: float, seed: int) -> Dict[str, List[Note]]:
    as_is = joined_notes(docs, "", sentences=1)
    return {
        "as_is": as_is,
        "capitals": [(upper_cased(text), gold) for text, gold in as_is],
        "notes_with_capitals": notes_with_capitals(docs, sentences, share, seed),
    }


def main(argv: Optional[List[str]] = None) -> None:
    parser = notes_parser(__doc__)
    parser.add_argument("--share", type=float, default=0.3, help="share of a note's sentences in capitals (default 0.3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sentencizer", default="sentencizer", choices=SENTENCIZERS, help="the sentencizer of the *_sentencizer column (default spaCy's)")
    args = parser.parse_args(argv)
    nlp = spacy.load(args.pipeline)
    taggers = [pipe for _, pipe in nlp.pipeline if hasattr(pipe, "lowercase_capitals")]
    docs = list(DocBin().from_disk(args.dev).get_docs(nlp.vocab))
    notes = layouts(docs, args.sentences, args.share, args.seed)
    result = {"pipeline": args.pipeline, "dev": args.dev, "sentences_per_note": args.sentences, "share": args.share,
              "sentencizer": args.sentencizer}
    # A pipeline without dtn_ner (spaCy's ner) is scored as it is, under "lowercase_capitals_none".
    for setting in (False, True) if taggers else (None,):
        for tagger in taggers:
            tagger.lowercase_capitals = setting  # stays false for the transformer variant
        row = {name: scores(nlp, layout)["f1"] for name, layout in notes.items()}
        nlp.add_pipe(args.sentencizer, first=True)
        row["notes_with_capitals_sentencizer"] = scores(nlp, notes["notes_with_capitals"])["f1"]
        nlp.remove_pipe(args.sentencizer)
        result[f"lowercase_capitals_{str(setting).lower()}"] = row
    write_result(args.output, result)


if __name__ == "__main__":
    main()
