"""Entity F1 on notes laid out as clinical text is: the grid's one-sentence docs
hold no whitespace token, a hospital's notes are full of them. Dev sentences
are joined into notes of `--sentences` each: by a space (the corpus as it is),
by a blank line, by a space hard-wrapped at each of `--widths` columns (a line
break replaces the last space before the column, so no offset moves), the same
after a wider line and a blank line, by two spaces (as many type after a full
stop), and by a space with a seeded `--non-breaking` share of all spaces turned
into U+00A0 (what an HTML or word-processor export leaves; no offset moves).
And the fields of a table or a problem list: the dev set's entities, three to a
note, joined by a tab, by two spaces, by a comma and a space, by a line break,
and one a line after a dash, a bullet or a number ("- ", "\u2022 ", "1. "). F1
is exact on character offsets and label, as an annotation tool compares;
`whitespace_edges` counts predicted entities that begin or end on a whitespace
token.

    python benchmarks/line_breaks.py PIPELINE benchmarks/results/line_breaks.json [--dev DEV.spacy]
"""
import argparse
import json
import random
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Set, Tuple

if not __package__:  # run as a script: the package it belongs to must be importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import spacy
from spacy.tokens import Doc, DocBin

from benchmarks.precision_f1 import CORPUS

Entity = Tuple[int, int, str]
# A line wider than the notes are wrapped at, as a date line typed above a pasted note is.
WIDE_LINE = "Seen in the outpatient clinic on 12 March 2019 by the attending physician."
# spaCy's rule-based sentencizer, and spacy-dtn's, which also tells a note's lines.
SENTENCIZERS = ("sentencizer", "note_sentencizer")
Note = Tuple[str, Set[Entity]]


def joined(pieces: List[Note], separator: str, per_note: int) -> List[Note]:
    """Notes of `per_note` pieces joined by `separator`, each piece's gold entities moved to where it now begins."""
    notes = []
    for first in range(0, len(pieces), per_note):
        text, gold = "", set()
        for piece, entities in pieces[first : first + per_note]:
            text += separator if text else ""
            gold |= {(len(text) + start, len(text) + end, label) for start, end, label in entities}
            text += piece
        notes.append((text, gold))
    return notes


def joined_notes(docs: List[Doc], separator: str, sentences: int) -> List[Note]:
    """Notes of `sentences` docs joined by `separator`, with their gold entities' offsets."""
    return joined([(doc.text, {(e.start_char, e.end_char, e.label_) for e in doc.ents}) for doc in docs], separator, sentences)


def entity_lists(docs: List[Doc], separator: str, per_note: int = 3, marks: Sequence[str] = ("",)) -> List[Note]:
    """Notes made of the docs' entities alone, `per_note` each, joined by
    `separator`, the k-th of a note after marks[k % len(marks)]."""
    entities = [e for doc in docs for e in doc.ents]
    items = []
    for k, e in enumerate(entities):
        mark = marks[k % per_note % len(marks)]
        items.append((mark + e.text, {(len(mark), len(mark) + len(e.text), e.label_)}))
    return joined(items, separator, per_note)


def hard_wrapped(text: str, width: int) -> str:
    """The text with the last space before each line's `width`-th column
    turned into a line break, as a note editor wraps; offsets are unchanged."""
    chars, column, last_space = list(text), 0, -1
    for i, char in enumerate(chars):
        if char == "\n":
            column, last_space = 0, -1
            continue
        last_space = i if char == " " else last_space
        column += 1
        if column > width and last_space >= 0:
            chars[last_space] = "\n"
            column, last_space = i - last_space, -1
    return "".join(chars)


def after_a_wide_line(text: str, gold: Set[Entity]) -> Note:
    """The note after WIDE_LINE and a blank line, its entities moved with it."""
    shift = len(WIDE_LINE) + 2
    return WIDE_LINE + "\n\n" + text, {(start + shift, end + shift, label) for start, end, label in gold}


def non_breaking(text: str, share: float, rng: random.Random) -> str:
    """The text with a `share` of its spaces turned into no-break spaces (U+00A0)."""
    return "".join("\u00a0" if char == " " and rng.random() < share else char for char in text)


def scores(nlp: spacy.Language, notes: List[Note]) -> Dict[str, float]:
    found = correct = expected = edges = 0
    for doc, (_, gold) in zip(nlp.pipe(text for text, _ in notes), notes):
        predicted = {(e.start_char, e.end_char, e.label_) for e in doc.ents}
        edges += sum(e[0].is_space or e[-1].is_space for e in doc.ents)
        found, correct, expected = found + len(predicted), correct + len(predicted & gold), expected + len(gold)
    precision, recall = correct / max(found, 1), correct / max(expected, 1)
    f1 = 2 * precision * recall / max(precision + recall, 1e-9)
    return {"f1": round(100 * f1, 2), "precision": round(100 * precision, 2), "recall": round(100 * recall, 2),
            "whitespace_edges": edges}


def notes_parser(description: str) -> argparse.ArgumentParser:
    """The command line of a benchmark on notes made of dev sentences: the
    pipeline, the JSON it writes, the dev set and the sentences per note."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pipeline")
    parser.add_argument("output")
    parser.add_argument("--dev", default=str(CORPUS / "target_dev.spacy"))
    parser.add_argument("--sentences", type=int, default=10, help="sentences per note (default 10)")
    return parser


def write_result(path: str, result: Dict[str, object]) -> None:
    Path(path).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def main(argv: Optional[List[str]] = None) -> None:
    parser = notes_parser(__doc__)
    parser.add_argument("--widths", type=int, nargs="+", default=[40, 60, 80], help="hard-wrap columns (default 40 60 80)")
    parser.add_argument("--non-breaking", type=float, default=0.1, help="share of spaces made U+00A0 (default 0.1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--sentencizer", nargs="?", const="sentencizer", choices=SENTENCIZERS,
        help="read each note sentence by sentence: spaCy's sentencizer first (or the one named)",
    )
    args = parser.parse_args(argv)
    nlp = spacy.load(args.pipeline)
    if args.sentencizer:
        nlp.add_pipe(args.sentencizer, first=True)
    docs = list(DocBin().from_disk(args.dev).get_docs(nlp.vocab))
    by_space = joined_notes(docs, " ", args.sentences)
    rng = random.Random(args.seed)
    layouts = {
        "space": by_space,
        "blank_line": joined_notes(docs, "\n\n", args.sentences),
        **{f"wrapped_{width}": [(hard_wrapped(text, width), gold) for text, gold in by_space] for width in args.widths},
        **{f"wrapped_{width}_after_a_wide_line": [after_a_wide_line(hard_wrapped(text, width), gold) for text, gold in by_space]
           for width in args.widths if width < len(WIDE_LINE)},
        "two_spaces": joined_notes(docs, "  ", args.sentences),
        "non_breaking": [(non_breaking(text, args.non_breaking, rng), gold) for text, gold in by_space],
        "entities_by_tab": entity_lists(docs, "\t"),
        "entities_by_two_spaces": entity_lists(docs, "  "),
        "entities_by_comma": entity_lists(docs, ", "),
        "entities_by_line_break": entity_lists(docs, "\n"),
        "entities_by_dashed_lines": entity_lists(docs, "\n", marks=["- "]),
        "entities_by_bulleted_lines": entity_lists(docs, "\n", marks=["\u2022 "]),
        "entities_by_numbered_lines": entity_lists(docs, "\n", marks=["1. ", "2. ", "3. "]),
    }
    result = {"pipeline": args.pipeline, "dev": args.dev, "notes": len(by_space), "sentences_per_note": args.sentences,
              "non_breaking_share": args.non_breaking, "seed": args.seed, "sentencizer": args.sentencizer or False,
              **{name: scores(nlp, notes) for name, notes in layouts.items()}}
    write_result(args.output, result)


if __name__ == "__main__":
    main()
