"""Entity F1 on text written with characters the grid's corpora lack: a
hospital's notes come through PDF text extraction (ligatures: "ﬁ" for "fi"),
word processors (soft hyphens, U+00AD, at hyphenation points), text files
saved with a byte-order mark (U+FEFF, kept in the text so that offsets point
into the file) and East Asian input methods (full-width forms: "ｃａｎｃｅｒ").
Dev sentences are joined by a space into notes of `--sentences` each
(line_breaks.py's "space" notes) and scored as they are, with every "ffi",
"ffl", "ff", "fi" and "fl" written as its ligature, with a soft hyphen after
the fourth letter of every word of eight letters or more, with a byte-order
mark before each note (gold offsets moved with the text in these three), and
with every printable ASCII character in its full-width form (no offset
moves). F1 is exact on character offsets and label (line_breaks.scores).

    python benchmarks/characters.py PIPELINE OUT.json [--dev DEV.spacy]
"""
import re
import sys
from pathlib import Path
from typing import Callable, Dict, List, Optional

if not __package__:  # run as a script: the package it belongs to must be importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import spacy
from spacy.tokens import Doc, DocBin

from benchmarks.line_breaks import Note, joined_notes, notes_parser, scores, write_result

# Longest first: "ffi" is one ligature, not "ﬀ" + "i".
LIGATURES = {"ffi": "\ufb03", "ffl": "\ufb04", "ff": "\ufb00", "fi": "\ufb01", "fl": "\ufb02"}
FULL_WIDTH = {chr(code): chr(code + 0xFEE0) for code in range(0x21, 0x7F)}
# A soft hyphen (U+00AD) after the fourth letter of every word of eight letters or more.
HYPHENATION_POINT = re.compile(r"(?<=\b[A-Za-z]{4})(?=[A-Za-z]{4})")


def substituted(note: Note, pattern: re.Pattern, replacement: Callable[[re.Match], str]) -> Note:
    """The note with each match of `pattern` replaced, and its gold offsets
    moved to where their characters now are."""
    text, gold = note
    pieces: List[str] = []
    moved = [0] * (len(text) + 1)  # moved[i]: where text[i] is in the new text
    last = shift = 0
    for match in pattern.finditer(text):
        for i in range(last, match.start()):
            moved[i] = i + shift
        new = replacement(match)
        for i in range(match.start(), match.end()):
            moved[i] = match.start() + shift
        pieces += [text[last : match.start()], new]
        shift += len(new) - (match.end() - match.start())
        last = match.end()
    for i in range(last, len(text) + 1):
        moved[i] = i + shift
    pieces.append(text[last:])
    return "".join(pieces), {(moved[start], moved[end], label) for start, end, label in gold}


def with_ligatures(note: Note) -> Note:
    return substituted(note, re.compile("|".join(LIGATURES)), lambda match: LIGATURES[match.group()])


def with_soft_hyphens(note: Note) -> Note:
    return substituted(note, HYPHENATION_POINT, lambda match: "\u00ad")


def with_byte_order_mark(note: Note) -> Note:
    """The note as a text file saved with a byte-order mark is read when the mark is kept."""
    return substituted(note, re.compile(r"\A"), lambda match: "\ufeff")


def full_width(note: Note) -> Note:
    text, gold = note
    return "".join(FULL_WIDTH.get(char, char) for char in text), gold


def layouts(docs: List[Doc], sentences: int) -> Dict[str, List[Note]]:
    as_is = joined_notes(docs, " ", sentences)
    rewrites = {"ligatures": with_ligatures, "soft_hyphens": with_soft_hyphens,
                "byte_order_mark": with_byte_order_mark, "full_width": full_width}
    return {"as_is": as_is, **{name: [rewrite(note) for note in as_is] for name, rewrite in rewrites.items()}}


def main(argv: Optional[List[str]] = None) -> None:
    args = notes_parser(__doc__).parse_args(argv)
    nlp = spacy.load(args.pipeline)
    docs = list(DocBin().from_disk(args.dev).get_docs(nlp.vocab))
    result = {"pipeline": args.pipeline, "dev": args.dev, "sentences_per_note": args.sentences,
              **{name: scores(nlp, notes) for name, notes in layouts(docs, args.sentences).items()}}
    write_result(args.output, result)


if __name__ == "__main__":
    main()
