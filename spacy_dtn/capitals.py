"""Text written in capitals, read lower-cased in prediction.

Hospital systems write whole notes or sections in capitals. A tagger learns
case from mixed-case corpora: every word feature but NORM (PREFIX, SUFFIX,
SHAPE, the characters) changes with it, and on NCBI-disease dev upper-cased
DTN lost 24 F1 points; reading those sentences lower-cased gave back more
than half (README, "Notes in capitals").

Policy: a prediction window is read lower-cased when at least
CAPITALS_SHARE of its cased letters are capitals and it has at least
CAPITALS_MIN_LETTERS of them; otherwise each of its lines (a note's sections,
headings and lists in capitals) that meets the same rule is. So a short
acronym, or gene symbols in mixed-case text, are read as written; a unit in
small letters ("81 mg") does not keep a line in capitals from counting; a
line made of gene symbols alone ("MAOA - MAOB - NDP") does count. The model
reads a copy of the window's tokens with those tokens lower-cased (reading.py:
each keeps its NORM and its place in the note, so entity offsets hold); the
note itself is never changed. A line ends where str.splitlines
ends one (line feed, carriage return, form feed: a PDF export's page break).
No window of the shipped corpora's dev and test sets is in capitals (none has
a line break), so their scores are the same either way.
"""
from typing import Iterator, Set, Tuple

from spacy.tokens import Span, Token

CAPITALS_SHARE = 0.9
CAPITALS_MIN_LETTERS = 20
ASCII_UPPER, ASCII_LOWER = bytes(range(ord("A"), ord("Z") + 1)), bytes(range(ord("a"), ord("z") + 1))
# The characters str.splitlines ends a line at.
LINE_BREAKS = frozenset("\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029")


def in_capitals(span: Span) -> bool:
    return _in_capitals(*_letters(span.text))


def _in_capitals(upper: int, cased: int) -> bool:
    return cased >= CAPITALS_MIN_LETTERS and upper >= CAPITALS_SHARE * cased


def _letters(text: str) -> Tuple[int, int]:
    """How many capitals, and how many cased letters, the text has. ASCII text
    (most notes) is counted by bytes.translate, ten times faster than a
    Python-level pass: the rule runs on every window served."""
    if text.isascii():
        data = text.encode("ascii")
        upper = len(data) - len(data.translate(None, ASCII_UPPER))
        return upper, upper + len(data) - len(data.translate(None, ASCII_LOWER))
    upper = sum(map(str.isupper, text))
    return upper, upper + sum(map(str.islower, text))


def breaks_line(token: Token) -> bool:
    return token.is_space and not LINE_BREAKS.isdisjoint(token.text)


def lines(span: Span) -> Iterator[Span]:
    """The span's lines: its runs of tokens between tokens that hold a line break."""
    start = span.start
    for token in span:
        if breaks_line(token):
            if token.i > start:
                yield span.doc[start : token.i]
            start = token.i + 1
    if start < span.end:
        yield span.doc[start : span.end]


def tokens_in_capitals(span: Span, text: str) -> Set[int]:
    """The doc indices of the span's tokens that are read lower-cased: the
    whole window, or its lines in capitals; none in mixed-case text, which is
    told from its text (`span.text`) alone, without a loop over its tokens (a
    line of text holds the letters of the line of tokens)."""
    by_line = [_letters(line) for line in text.splitlines()]
    if _in_capitals(sum(upper for upper, _ in by_line), sum(cased for _, cased in by_line)):
        return set(range(span.start, span.end))
    if len(by_line) > 1 and any(_in_capitals(*letters) for letters in by_line):
        return {token.i for line in lines(span) if in_capitals(line) for token in line}
    return set()
