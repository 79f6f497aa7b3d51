"""Which line breaks of a note an editor made (a wrapped line) and which its
writer made (the end of a heading, a list item, a paragraph); and the
bullets that mark a list's items.

Policy: the tagger does not read line breaks (reading.py), so a break the
writer made is a column break, which no entity continues across: a problem
list written one entry a line does not run together. A break an editor made
where a line was full is read as the space it replaced, and an entity may
run across it ("congestive heart\\nfailure"). A line break is taken for a
wrap when it is a single break (not a blank line) and the next word would
not have fit on the line within the width of the other lines around it (the
widest of them that another of them comes within WRAP_SUPPORT characters
of, if it has WRAP_MIN_WIDTH characters or more, among the lines a window
touches and those within WRAP_CONTEXT characters before and after them),
which is why an editor moves a word down. A wrapped paragraph has many lines
of about its width; the widest item of a list, or the long line that
introduces it, is wider than the lines around it, so it sets no width for
itself.

Chosen on NCBI-disease dev notes (benchmarks/line_breaks.py, the demo's
DTN, F1): with every line break a column break, notes hard-wrapped at 80
columns scored 67.97 (75.18 with their breaks as spaces); with none, entity
lists one entity a line scored 23.12 (73.71 with every break). The widest
line as the width, at least 50 characters, scored 59.28 / 75.18 / 75.18 on
notes wrapped at 40 / 60 / 80 and 73.18 on the lists; at least 40, 75.18 on
all three and 72.02; the second widest, at least 30, 75.18 on all three
and 71.71; the second widest, at least 40, 73.80 / 75.18 / 75.18 and
73.76 (chosen). A review then found that the second widest line can be the
line judged, the long line before a list, which then ran into its first
item. The widest other line (this rule) scores the same on every layout of
both shipped pairs but two: with bullets told, 75.05 instead of 73.93 on
notes wrapped at 40 and 73.67 instead of 73.76 on the unmarked list
(BioNLP13PC dev: 71.93 instead of 71.80, and 72.56 both).

The lines around a window are those within 800 characters, not only the
line before and after it: a window of one sentence (a sentencizer's) of a
note wrapped at 40 columns touches a few lines, none of which may reach the
width, and its wraps were taken for the writer's breaks. With spaCy's
sentencizer, notes wrapped at 40 scored 70.10 F1 (NCBI-disease dev, the
demo's DTN; BioNLP13PC dev, mean of 3 DTN pipelines: 71.00) against 75.99
(72.36) wrapped at 60 or 80; the lines within 400 characters gave 75.86
(71.84), within 800 and 1,600 75.99 (72.36). Without a sentencizer only
notes wrapped at 40 moved (NCBI-disease 75.05 -> 75.18); every other layout
of line_breaks.py and capitals.py scored the same on both pairs.

A review then found that one line wider than a paragraph's width, within
those 800 characters (a date line above a note wrapped at 60), became the
width, so the paragraph's wraps were taken for the writer's breaks: dev
notes wrapped at 40 / 60 after such a line scored 63.83 / 68.60 read in
windows (NCBI-disease; BioNLP13PC 68.50 / 69.76), 66.98 / 71.02 sentence by
sentence. Hence the support: the widest line of 40 characters or more that
another line comes within 10 characters of (a wrapped paragraph has many
such lines, one wide line has none), else the widest as before: 75.10 /
75.18 in windows (71.46 / 71.46), 75.89 / 76.04 with spaCy's sentencizer
(71.95 / 71.98), 75.89 / 75.99 with note_sentencizer (71.90 / 71.98); no
other layout moved on either pair in any of the three readings. 10 is the
one support tried. Without the 40 (any two lines within 10) the short
items of a list supported a width under 40 and a two-line paragraph above
them lost its wrap (a test); with the 40 asked of the line below instead,
NCBI-disease scored 75.76 / 75.71 on notes wrapped at 40 after a wide line.

Two lines in a row that begin with a bullet ("- ", "* ", "• ") or an item
number ("2. ", "b) ") are items of a list, so the break between them is the
writer's whatever the widths. A bullet that begins a line after a writer's
break is layout, not text, and the tagger does not read it (reading.py):
read, "- breast cancer" was often tagged with its dash (NCBI-disease dev
entities one a line, under the second-widest rule: 73.76 F1 plain, 54.46
with "- ", 53.21 with "• ", 48.46 with "* "; not read, 73.62, 73.56 and
73.56; 76.89 with "1. ", which stays read). After a wrap, a dash that begins
a line is a dash in the text ("X\\n- linked"): taking every line-initial
dash for a bullet cost 0.45 F1 on notes wrapped at 80 columns.
"""
import re
from typing import AbstractSet, Iterable, List, NamedTuple, Optional, Set

from spacy.tokens import Doc, Token

from .capitals import LINE_BREAKS, breaks_line

WRAP_MIN_WIDTH = 40
# Characters before and after a window's lines whose lines also set the width.
WRAP_CONTEXT = 800
# A width is one that another line comes this close to: a single wider line sets none.
WRAP_SUPPORT = 10
# Marks of a list item when they begin a line, followed by a space.
BULLETS = frozenset("-\u2013\u2014*+\u2022\u25e6\u25aa\u25ab\u2023\u2043\u00b7\u25cb\u25cf\u25a0\u25a1\u25ba\u25b8")
ITEM_NUMBER = re.compile(r"(?:\d{1,3}(?:\.\d{1,3})*|[a-z]|[ivx]{2,5})[.)]")


def bullets(doc: Doc, line_starts: Iterable[int], wraps: AbstractSet[int]) -> Set[int]:
    """Of the tokens that begin a line (`line_starts`), the bullets: a mark of
    its own, followed by a space or a tab, after a line break not in `wraps`,
    or at the start of a doc with words on two lines or more ("- asthma\\n-
    gout"). A text of one line, with or without a line break at its end, is
    read as it is: a corpus of one sentence a doc may begin a sentence with a
    dash."""
    return {i for i in line_starts if _is_mark(doc, i) and _after_writers_break(doc, i, wraps)}


def _is_mark(doc: Doc, i: int) -> bool:
    """A bullet character, a token of its own, followed by a space or a tab."""
    return doc[i].text in BULLETS and _before_space(doc, i)


def _before_space(doc: Doc, i: int) -> bool:
    """Whether a space, a tab or other whitespace follows token i."""
    return bool(doc[i].whitespace_) or (i + 1 < len(doc) and doc[i + 1].is_space)


def _after_writers_break(doc: Doc, i: int, wraps: AbstractSet[int]) -> bool:
    """Whether only whitespace is between token i and a line break not in
    `wraps`, or the start of a doc that has words on two lines."""
    j = i - 1
    while j >= 0 and doc[j].is_space and not breaks_line(doc[j]):
        j -= 1
    if j >= 0:
        return breaks_line(doc[j]) and j not in wraps
    return _has_two_lines(doc)


def _has_two_lines(doc: Doc) -> bool:
    broken = False
    for token in doc:
        if token.is_space:
            broken = broken or breaks_line(token)
        elif broken:
            return True
    return False


def list_item_mark(doc: Doc, i: int) -> int:
    """How many tokens the list item mark that begins at token i has: a
    bullet, or an item number ("2.", "b)", "1.2.", "ii.": one or two tokens),
    followed by a space or a tab; 0 where token i begins none."""
    token = doc[i]
    if token.text in BULLETS:
        return int(_is_mark(doc, i))
    mark = token if _before_space(doc, i) or i + 1 == len(doc) else doc[i + 1]
    text = token.text if mark is token else token.text + mark.text
    if _before_space(doc, mark.i) and ITEM_NUMBER.fullmatch(text):
        return mark.i - i + 1
    return 0


def first_word(doc: Doc, i: int, end: int) -> int:
    """The first token from i on, before `end`, that is not whitespace (`end` if none is)."""
    while i < end and doc[i].is_space:
        i += 1
    return i


def wrapped_line_breaks(doc: Doc, start: int, end: int, text: Optional[str] = None) -> Set[int]:
    """The doc indices of the line-break tokens in doc[start:end] that are
    where an editor wrapped a line. A line's width is the widest of the
    other lines the span touches, each measured whole, and of the lines
    within WRAP_CONTEXT characters before and after them: a sentence of a
    paragraph wrapped at 40 columns touches a few lines, none of which may
    reach the width. `text` is doc.text, which costs a pass over the doc's
    tokens: a caller with many windows of one doc computes it once."""
    text = doc.text if text is None else text
    first, last = _line_start(doc, start), _line_end(doc, end)
    lines = _lines(doc, first, last)
    widths = sorted([line.length for line in lines] + _context_widths(doc, first, last, text), reverse=True)
    if len(widths) < 2 or widths[0] < WRAP_MIN_WIDTH:
        return set()
    wraps = set()
    for line in lines:
        if start <= line.end < end:
            width = _width(widths, line.length)
            if width >= WRAP_MIN_WIDTH and _wraps(doc, line, width):
                wraps.add(line.end)
    return wraps


def _width(widths: List[int], own: int) -> int:
    """The width that a line of `own` characters wraps at, among lines of
    `widths` (widest first, its own among them): the widest of the other
    lines, of WRAP_MIN_WIDTH characters or more, that another other line
    comes within WRAP_SUPPORT characters of; else the widest other line (a
    short paragraph has too few lines to support a width, and the short
    items of a list nearby support none that counts)."""
    others = list(widths)
    others.remove(own)
    for wide, next_wide in zip(others, others[1:]):
        if wide < WRAP_MIN_WIDTH:
            break
        if wide - next_wide <= WRAP_SUPPORT:
            return wide
    return others[0]


def _context_widths(doc: Doc, first: int, last: int, text: str) -> List[int]:
    """The widths of the lines within WRAP_CONTEXT characters before doc[first]
    (a line's first token) and after doc[last] (the line break that ends a
    line, or the doc's end): cut from the text, whose lines str.splitlines
    finds at C speed (its line breaks are LINE_BREAKS). A line that reaches
    beyond counts up to there."""
    begin = doc[first].idx if first < len(doc) else len(text)
    stop = doc[last].idx if last < len(doc) else len(text)
    around = text[max(begin - WRAP_CONTEXT, 0) : begin].splitlines() + text[stop : stop + WRAP_CONTEXT].splitlines()
    return [len(line.strip()) for line in around]


class _Line(NamedTuple):
    length: int  # characters from its first word to the end of its last
    first: int  # index of its first word, -1 if it has none
    end: int  # index of the line-break token that ends it, -1 if none does


def _wraps(doc: Doc, line: _Line, width: int) -> bool:
    """Whether the line break that ends the line is where an editor moved
    down the next word: a single break, the word would not have fit, and the
    two lines are not items of one list."""
    after = line.end + 1
    if not _is_single_break(doc[line.end].text) or after == len(doc) or doc[after].is_space:
        return False
    if line.length + 1 + _word_length(doc, after) <= width:
        return False
    return not (line.first >= 0 and list_item_mark(doc, line.first) and list_item_mark(doc, after))


def _lines(doc: Doc, start: int, end: int) -> List[_Line]:
    """The lines of doc[start:end]."""
    lines, first, last = [], None, None
    for token in doc[start:end]:
        if not token.is_space:
            first = token if first is None else first
            last = token
        elif breaks_line(token):
            lines.append(_line(first, last, token.i))
            first = last = None
    if first is not None:
        lines.append(_line(first, last, -1))
    return lines


def _line(first: Optional[Token], last: Optional[Token], end: int) -> _Line:
    if first is None or last is None:
        return _Line(0, -1, end)
    return _Line(last.idx + len(last.text) - first.idx, first.i, end)


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
