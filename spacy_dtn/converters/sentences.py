"""Sentence boundaries for whole documents, never inside an entity.

Document formats (brat, i2b2 de-identification XML, i2b2 2010 files read as
one Doc each) give notes of hundreds or thousands of tokens, and the tagger
works per sentence: without boundaries it cuts a long note into fixed
windows, and an entity cut by a window edge gets a gold tag sequence the
constrained CRF forbids. So the converters set `token.is_sent_start` on the
reference Docs they write, with one of the `SPLITTERS`:

- "sentencizer": spaCy's rule-based `Sentencizer` (a sentence ends after
  `.`, `!`, `?` and similar punctuation);
- "lines": the note's line structure (a sentence starts after every line
  break), for notes whose lines are sentences, headers or list items;
- "none": no boundaries (the Doc is one unit, as before this option).

Policy: a proposed boundary that falls inside any annotated entity (any span
of `doc.spans[ALL_ENTITIES_KEY]`, so nested and overlapping ones too, and
every entity of `doc.ents`) is removed, and counted as
"sentence_breaks_in_entities". A boundary never cuts an entity.
"""
from typing import TYPE_CHECKING, List

import numpy
from spacy.attrs import SENT_START
from spacy.pipeline import Sentencizer
from spacy.tokens import Doc

from .spans import ALL_ENTITIES_KEY

if TYPE_CHECKING:
    from .stats import ConversionStats

SPLITTERS = ("sentencizer", "lines", "none")


def check_splitter(splitter: str) -> str:
    """Fail early on an unknown splitter name."""
    if splitter not in SPLITTERS:
        raise ValueError(
            f"unknown sentence splitter {splitter!r}: choose one of {', '.join(SPLITTERS)}"
        )
    return splitter


def set_sentences(doc: Doc, splitter: str, stats: "ConversionStats") -> None:
    """Set sentence starts on `doc` with `splitter`, minus every start that
    would cut an annotated entity; "none" leaves the Doc unsplit."""
    if check_splitter(splitter) == "none" or len(doc) == 0:
        return
    starts = _sentencizer(doc) if splitter == "sentencizer" else _line_starts(doc)
    inside = {
        i
        for span in doc.spans.get(ALL_ENTITIES_KEY, [])
        for i in range(span.start + 1, span.end)
        if starts[i]
    }
    stats.add("sentence_breaks_in_entities", len(inside))
    # One array for the whole Doc: spaCy's Token.is_sent_start setter checks
    # the whole Doc per token, which made long notes quadratic to split.
    values = [1 if start and i not in inside else -1 for i, start in enumerate(starts)]
    doc.from_array([SENT_START], numpy.asarray(values, dtype="int64").view("uint64"))


def _sentencizer(doc: Doc) -> List[bool]:
    (starts,) = Sentencizer().predict([doc])
    return [bool(start) for start in starts]


def _line_starts(doc: Doc) -> List[bool]:
    """A sentence starts at the first token and after every token holding a
    line break (spaCy's tokenizer keeps line breaks as whitespace tokens)."""
    return [i == 0 or "\n" in doc[i - 1].text_with_ws for i in range(len(doc))]
