"""Which line breaks of a note an editor made (a wrapped line) and which its
writer made (the end of a heading, a list item, a paragraph).

Policy: the tagger does not read line breaks (reading.py), so a break the
writer made is a column break, which no entity continues across: a problem
list written one entry a line does not run together. A break an editor made
where a line was full is read as the space it replaced, and an entity may
run across it ("congestive heart\\nfailure"). A line break is taken for a
wrap when it is a single break (not a blank line), the lines around it share
a width (the second widest of them has WRAP_MIN_WIDTH characters or more: a
wrapped paragraph has many lines of about its width, while the widest item
of a list is wider than the others) and the next word would not have fit on
the line within that width, which is why an editor moves a word down.

Chosen on NCBI-disease dev notes (benchmarks/line_breaks.py, the demo's
DTN, F1): with every line break a column break, notes hard-wrapped at 80
columns scored 67.97 (75.18 with their breaks as spaces); with none, entity
lists one entity a line scored 23.12 (73.71 with every break). The widest
line as the width, at least 50 characters, scored 59.28 / 75.18 / 75.18 on
notes wrapped at 40 / 60 / 80 and 73.18 on the lists; at least 40, 75.18 on
all three and 72.02; the second widest, at least 30, 75.18 on all three
and 71.71; the second widest, at least 40 (this rule), 73.80 / 75.18 /
75.18 and 73.76.
"""
from typing import List, Optional, Set, Tuple

from spacy.tokens import Doc, Token

from .capitals import LINE_BREAKS, breaks_line

WRAP_MIN_WIDTH = 40


def wrapped_line_breaks(doc: Doc, start: int, end: int) -> Set[int]:
    """The doc indices of the line-break tokens in doc[start:end] that are
    where an editor wrapped a line. The width is the second widest of the
    lines the span touches and the line before and after them, each measured
    whole: a sentence that ends a wrapped paragraph touches its full line and
    the paragraph's short last one, and may begin or end inside a line."""
    first, last = _line_start(doc, start), _line_end(doc, end)
    first, last = _line_start(doc, max(first - 1, 0)), _line_end(doc, min(last + 1, len(doc)))
    lines = _lines(doc, first, last)
    widths = sorted((length for length, _ in lines), reverse=True)
    width = widths[1] if len(widths) > 1 else 0
    if width < WRAP_MIN_WIDTH:
        return set()
    return {
        i
        for length, i in lines
        if start <= i < end and _is_single_break(doc[i].text) and length + 1 + _word_length(doc, i + 1) > width
    }


def _lines(doc: Doc, start: int, end: int) -> List[Tuple[int, int]]:
    """(length in characters, index of the line-break token that ends it) of
    each line in doc[start:end]; the last one, if no break ends it, with -1."""
    lines, first, last = [], None, None
    for token in doc[start:end]:
        if not token.is_space:
            first = token if first is None else first
            last = token
        elif breaks_line(token):
            lines.append((_length(first, last), token.i))
            first = last = None
    if first is not None:
        lines.append((_length(first, last), -1))
    return lines


def _length(first: Optional[Token], last: Optional[Token]) -> int:
    """Characters from the first word of a line to the end of its last (no indent, no trailing spaces)."""
    return 0 if first is None or last is None else last.idx + len(last.text) - first.idx


def _line_start(doc: Doc, i: int) -> int:
    while i > 0 and not breaks_line(doc[i - 1]):
        i -= 1
    return i


def _line_end(doc: Doc, i: int) -> int:
    while i < len(doc) and not breaks_line(doc[i]):
        i += 1
    return i


def _is_single_break(text: str) -> bool:
    breaks = text.replace("\r\n", "\n")
    return sum(char in LINE_BREAKS for char in breaks) == 1


def _word_length(doc: Doc, i: int) -> int:
    """The length of the word that begins at token i: its tokens up to the first space."""
    length = 0
    while i < len(doc) and not doc[i].is_space:
        length += len(doc[i].text)
        if doc[i].whitespace_:
            break
        i += 1
    return length
