"""What the tagger reads of a window of a note: its words, in their plain
characters, not its layout.

Policy: spaCy's tokenizer makes a whitespace token of every tab, no-break
space (U+00A0, which HTML and word-processor exports leave between words) and
run of spaces. The corpora a model learns from hold none, so each is a step
of the BiLSTMs that the model never learned, between two words that are one
step apart in training: on notes of NCBI-disease dev sentences
(benchmarks/line_breaks.py, the demo's DTN) a tenth of the spaces made U+00A0
cost 0.7 F1, a third 4.5 and every one 17.5; two spaces between sentences 0.2.
So the tagger reads a window without its whitespace tokens, in training and
in prediction alike. A tab, a run of two or more spaces or a line break left
out is a column break: in prediction no entity continues across one, as the
fields of a table or the items of a list do not run into each other; a line
break that an editor made by wrapping a line is not (line_wraps.py), and an
entity may run across it as across the space it replaced. The demo's DTN
scored 46.18 F1 on dev entities joined by tabs with the tab read, 23.12 with
it read as one space, and 73.71 with the break; 45.17 on the same joined by
line breaks with the line break read, 73.67 with the break where no editor
wrapped (line_breaks.py). Nor does it read the bullet that begins a list
item ("- ", "• ": line_wraps.py). Lines in capitals are told on the note's
own lines (capitals.py).

Likewise each token is read in its NFKC form, without invisible format
characters (Unicode category Cf): the ligatures PDF text extraction leaves
("ﬁbrosis"), the full-width forms of East Asian input methods ("ｃａｎｃｅｒ"),
"㎎", decomposed accents, the soft hyphens (U+00AD) of word processors and
the byte-order mark (U+FEFF) that begins a text file saved with one. On the
same notes the demo's DTN scored 0.25 F1 instead of 75.18 in full-width forms
and 66.71 with soft hyphens (benchmarks/characters.py). A token that would
be left empty, or hold a space ("´" -> " ́"), is read as written.

Where a window has any of these, or lines in capitals to read lower-cased
(`lowercase_capitals`), the tagger reads a copy: each token read keeps its
place in the doc (`Reading.positions`), so the entities found in the copy
are put back on the note's own tokens, offsets and text, and a whitespace
token inside an entity stays inside it. A window with none (every window of
the shipped corpora) is read as it is: the copy, and the loop over tokens,
is made only where the window's text has a character that needs one.
"""
import unicodedata
from typing import AbstractSet, List, NamedTuple, Optional, Sequence, Set, Tuple

import numpy
from spacy.attrs import NORM
from spacy.tokens import Doc, Span
from spacy.training.iob_utils import tags_to_entities

from .capitals import breaks_line, tokens_in_capitals
from .line_wraps import BULLETS, bullets, first_word, wrapped_line_breaks


class Reading(NamedTuple):
    """The tokens the tagger reads of a window, and where each one is in the doc
    (a NamedTuple: one is made for every window served)."""

    span: Span
    # Doc index of each token of `span`; None when `span` is the window itself.
    positions: Optional[List[int]] = None
    # Indices (in `span`) of the tokens that follow a column break.
    column_breaks: Tuple[int, ...] = ()

    def doc_index(self, i: int) -> int:
        return self.span.start + i if self.positions is None else self.positions[i]

    def doc_span(self, start: int, end: int) -> Tuple[int, int]:
        """The doc's token span of the tokens read[start:end] (and what lies between them)."""
        return self.doc_index(start), self.doc_index(end - 1) + 1


def column_break_flags(readings: Sequence[Reading]) -> numpy.ndarray:
    """A bool per token the readings read, in order: whether it follows a
    column break, so that no entity continues into it."""
    flags = numpy.zeros(sum(len(reading.span) for reading in readings), dtype=bool)
    start = 0
    for reading in readings:
        flags[[start + i for i in reading.column_breaks]] = True
        start += len(reading.span)
    return flags


class Layout(NamedTuple):
    """What a window's layout is: the doc indices of the tokens the tagger
    reads (None: all of them), and of the line breaks that wrap a line."""

    positions: Optional[List[int]] = None
    wraps: AbstractSet[int] = frozenset()


def read_layout(span: Span, text: str, doc_text: Optional[str] = None) -> Layout:
    """The span's layout: it reads no whitespace token and no bullet (a span
    of nothing else is read as it is, and no entity can begin on its
    whitespace: tagger_model.forbid_tags; nor is a token " " that a Doc built
    from words holds where the text has no run of spaces). `text` is span.text
    and `doc_text` the doc's, made here where a line break is judged if None
    (read_window)."""
    if not _may_hold_layout(text):
        return Layout()
    doc, start, end = span.doc, span.start, span.end
    spaces = {token.i for token in span if token.is_space}
    breaks = [i for i in sorted(spaces) if breaks_line(doc[i])]
    after_break = start > 0 and breaks_line(doc[start - 1])
    wraps = wrapped_line_breaks(doc, max(start - 1, 0), end, doc_text) if breaks or after_break else set()
    firsts = [i + 1 for i in breaks] + ([start] if start == 0 or after_break else [])
    line_starts = [i for i in (first_word(doc, first, end) for first in firsts) if i < end]
    left_out = spaces | bullets(doc, line_starts, wraps)
    kept = [i for i in range(start, end) if i not in left_out]
    return Layout(kept if 0 < len(kept) < len(span) else None, wraps)


def _may_hold_layout(text: str) -> bool:
    """Whether the text can hold a whitespace token or a bullet: a space that
    begins it (spaCy's tokenizer makes a token of it, and of the second space
    of a run, never of another single space), a run of spaces, other
    whitespace (a line break, a tab: a bullet begins a line), or a bullet
    that begins it. A Doc built from words may hold a token " " anywhere: it
    is read as such. Told at C speed (a regex scan cost 2.8 us a sentence):
    no whitespace but the space is printable (a control or format character
    may send a text to the loop too); text whose only whitespace is single
    spaces skips the loop over tokens."""
    return text.startswith(" ") or "  " in text or not text.isprintable() or text[:1] in BULLETS


def read_window(span: Span, lowercase_capitals: bool = True, doc_text: Optional[str] = None) -> Reading:
    """What the tagger reads of a prediction window. `doc_text` is
    span.doc.text, which costs a pass over the doc's tokens: a caller
    reading many windows of one doc computes it once and passes it."""
    text = span.text if doc_text is None else doc_text[span.start_char : span.end_char]
    layout = read_layout(span, text, doc_text)
    lowered = tokens_in_capitals(span, text) if lowercase_capitals else set()
    plain = is_plain(text)
    if layout.positions is None and not lowered and plain:
        return Reading(span)
    positions = list(range(span.start, span.end)) if layout.positions is None else layout.positions
    return _copy(span.doc, positions, lowered, plain, layout.wraps)


def read_training_segment(segment: Span, biluo: Sequence[str], doc_text: Optional[str] = None) -> Tuple[Reading, List[str]]:
    """What the tagger reads of a training segment, and the gold BILUO tags
    of the tokens it reads: as prediction reads, but with case as written
    (spacy_dtn.case_variants.v1 trains on case)."""
    reading = read_window(segment, lowercase_capitals=False, doc_text=doc_text)
    if reading.positions is None or len(reading.span) == len(segment):  # every token read
        return reading, list(biluo)
    return reading, _kept_tags(biluo, segment.start, reading.positions)


def _kept_tags(biluo: Sequence[str], start: int, positions: List[int]) -> List[str]:
    """The BILUO tags of the tokens read: each gold entity over the tokens of
    it that are read (an annotation that takes in a trailing no-break space
    ends on the word before it, as prediction would end it)."""
    read_at = {doc_index: i for i, doc_index in enumerate(positions)}
    tags = ["O"] * len(positions)
    for label, first, last in tags_to_entities(list(biluo)):
        kept = [read_at[i] for i in range(start + first, start + last + 1) if i in read_at]
        if not kept:
            continue
        if kept[0] == kept[-1]:
            tags[kept[0]] = f"U-{label}"
            continue
        tags[kept[0] : kept[-1] + 1] = [f"B-{label}"] + [f"I-{label}"] * (kept[-1] - kept[0] - 1) + [f"L-{label}"]
    return tags


def _copy(doc: Doc, positions: List[int], lowered: Set[int], plain: bool, wraps: AbstractSet[int]) -> Reading:
    """A copy of the doc's tokens at `positions`, those in `lowered` in small
    letters, each in NFKC without format characters unless the text is `plain`; a token is followed by a
    space where one followed it, or where a token left out did. Each keeps its
    NORM ("n't" -> "not"), the word feature every tagger reads, unless NFKC
    changed it: then it has the NORM of what is read."""
    tokens = [doc[i] for i in positions]
    cased = [token.lower_ if token.i in lowered else token.text for token in tokens]
    words = cased if plain else [plain_form(word) for word in cased]
    gaps = [after != before + 1 for before, after in zip(positions, positions[1:])] + [False]
    spaces = [bool(token.whitespace_) or gap for token, gap in zip(tokens, gaps)]
    copy = Doc(doc.vocab, words=words, spaces=spaces)
    norms = [token.norm if word == same else read.norm for token, word, same, read in zip(tokens, words, cased, copy)]
    copy.from_array([NORM], numpy.array(norms, dtype="uint64")[:, None])
    return Reading(copy[:], positions, _column_breaks(doc, positions, wraps))


def _column_breaks(doc: Doc, positions: List[int], wraps: AbstractSet[int]) -> Tuple[int, ...]:
    """Indices, among the tokens read, of those that follow a column break:
    whitespace left out that is a tab, a run of two or more spaces (a field
    or column boundary) or a line break that no editor made by wrapping a
    line (line_wraps.py), not a space between words."""
    gaps = [(i + 1, range(before + 1, after)) for i, (before, after) in enumerate(zip(positions, positions[1:])) if after > before + 1]
    line_breaks = [[i for i in left_out if breaks_line(doc[i])] for _, left_out in gaps]
    return tuple(i for (i, left_out), breaks in zip(gaps, line_breaks) if _is_column_break(doc, left_out, breaks, wraps))


def _is_column_break(doc: Doc, left_out: range, line_breaks: List[int], wraps: AbstractSet[int]) -> bool:
    """Whether the tokens left out between two tokens read (`line_breaks`:
    those of them that break a line) keep entities apart."""
    if line_breaks:
        return not wraps.issuperset(line_breaks)
    gap = doc[left_out.start - 1].whitespace_ + "".join(doc[i].text_with_ws for i in left_out)
    return "\t" in gap or len(gap) > 1


def is_plain(text: str) -> bool:
    """Whether the text is read as written: ASCII (most notes, told at C
    speed), or NFKC with no format character among its distinct characters."""
    if text.isascii():
        return True
    return unicodedata.is_normalized("NFKC", text) and not any(map(_is_format, set(text)))


def _is_format(char: str) -> bool:
    """An invisible format character (Unicode category Cf): U+00AD, U+200B, U+FEFF..."""
    return unicodedata.category(char) == "Cf"


def plain_form(word: str) -> str:
    """The word's NFKC form without format characters ("ﬁbrosis" -> "fibrosis",
    "ｃａｎｃｅｒ" -> "cancer", "can\u00adcer" -> "cancer"), unless that would leave
    nothing, or put a space in a token ("´" -> " ́")."""
    if word.isascii():
        return word
    # Format characters first: one between a letter and its accent keeps NFKC from composing them.
    plain = unicodedata.normalize("NFKC", "".join(char for char in word if not _is_format(char)))
    return word if not plain or any(char.isspace() for char in plain) else plain
