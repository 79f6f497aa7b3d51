"""Entity F1 on text written with compatibility characters: the grid's
corpora are plain text, a hospital's notes come through PDF text extraction
(ligatures: "ﬁ" for "fi") and East Asian input methods (full-width forms:
"ｃａｎｃｅｒ"). Dev sentences are joined by a space into notes of `--sentences`
each (line_breaks.py's "space" notes) and scored three ways: as they are, with
every "ffi", "ffl", "ff", "fi" and "fl" written as its ligature (gold offsets
moved with the text), and with every printable ASCII character written in its
full-width form (no offset moves). F1 is exact
on character offsets and label (line_breaks.scores).

    python benchmarks/characters.py PIPELINE OUT.json [--dev DEV.spacy]
"""
import sys
from pathlib import Path
from typing import Dict, List, Optional

if not __package__:  # run as a script: the package it belongs to must be importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import spacy
from spacy.tokens import Doc, DocBin

from benchmarks.line_breaks import Note, joined_notes, notes_parser, scores, write_result

# Longest first: "ffi" is one ligature, not "ﬀ" + "i".
LIGATURES = {"ffi": "\ufb03", "ffl": "\ufb04", "ff": "\ufb00", "fi": "\ufb01", "fl": "\ufb02"}
FULL_WIDTH = {chr(code): chr(code + 0xFEE0) for code in range(0x21, 0x7F)}


def with_ligatures(note: Note) -> Note:
    """The note with its letter pairs and triples as ligatures, and its gold
    offsets moved to where their characters now are."""
    text, gold = note
    out: List[str] = []
    moved = [0] * (len(text) + 1)  # moved[i]: where text[i] begins in the new text
    i = 0
    while i < len(text):
        letters = next((k for k in LIGATURES if text.startswith(k, i)), text[i])
        for j in range(i, i + len(letters)):
            moved[j] = len(out)
        out.append(LIGATURES.get(letters, letters))
        i += len(letters)
    moved[len(text)] = len(out)
    return "".join(out), {(moved[start], moved[end], label) for start, end, label in gold}


def full_width(note: Note) -> Note:
    text, gold = note
    return "".join(FULL_WIDTH.get(char, char) for char in text), gold


def layouts(docs: List[Doc], sentences: int) -> Dict[str, List[Note]]:
    as_is = joined_notes(docs, " ", sentences)
    return {"as_is": as_is, "ligatures": [with_ligatures(n) for n in as_is], "full_width": [full_width(n) for n in as_is]}


def main(argv: Optional[List[str]] = None) -> None:
    args = notes_parser(__doc__).parse_args(argv)
    nlp = spacy.load(args.pipeline)
    docs = list(DocBin().from_disk(args.dev).get_docs(nlp.vocab))
    result = {"pipeline": args.pipeline, "dev": args.dev, "sentences_per_note": args.sentences,
              **{name: scores(nlp, notes) for name, notes in layouts(docs, args.sentences).items()}}
    write_result(args.output, result)


if __name__ == "__main__":
    main()
