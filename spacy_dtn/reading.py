"""What the tagger reads of a window of a note: its words and line breaks, not its layout.

Policy: spaCy's tokenizer makes a whitespace token of every tab, no-break
space (U+00A0, which HTML and word-processor exports leave between words) and
run of spaces. The corpora a model learns from hold none, so each is a step
of the BiLSTMs that the model never learned, between two words that are one
step apart in training: on notes of NCBI-disease dev sentences
(benchmarks/line_breaks.py, the demo's DTN) a tenth of the spaces made U+00A0
cost 0.7 F1, a third 4.5 and every one 17.5; two spaces between sentences 0.2.
So the tagger reads a window without its whitespace tokens that hold no line
break, in training and in prediction alike. Line breaks stay: they end
headings, list items and lines in capitals (capitals.py), and no entity
begins or ends on one (tagger_model.forbid_on_whitespace).

Where a window has such tokens, or lines in capitals to read lower-cased
(`lowercase_capitals`), the tagger reads a copy: each token read keeps its
NORM and its place in the doc (`Reading.positions`), so the entities found
in the copy are put back on the note's own tokens, offsets and text, and a
whitespace token inside an entity stays inside it. A window with neither
(every window of the shipped corpora) is read as it is: the copy, and the
loop over tokens, is made only where the window's text has a character a
whitespace token needs.
"""
import re
from dataclasses import dataclass
from typing import List, Optional, Sequence, Set, Tuple

import numpy
from spacy.attrs import NORM
from spacy.tokens import Doc, Span, Token

from .capitals import breaks_line, tokens_in_capitals

# A text with neither a run of spaces nor whitespace other than a space has no whitespace token.
MAY_HOLD_WHITESPACE = re.compile(r"[^\S ]|  ")


@dataclass(frozen=True)
class Reading:
    """The tokens the tagger reads of a window, and where each one is in the doc."""

    span: Span
    # Doc index of each token of `span`; None when `span` is the window itself.
    positions: Optional[List[int]] = None

    def doc_index(self, i: int) -> int:
        return self.span.start + i if self.positions is None else self.positions[i]

    def doc_span(self, start: int, end: int) -> Tuple[int, int]:
        """The doc's token span of the tokens read[start:end] (and what lies between them)."""
        return self.doc_index(start), self.doc_index(end - 1) + 1


def is_layout(token: Token) -> bool:
    """A whitespace token that holds no line break: a tab, U+00A0, a run of spaces."""
    return token.is_space and not breaks_line(token)


def read_positions(span: Span) -> Optional[List[int]]:
    """Doc indices of the span's tokens the tagger reads; None when it reads
    all of them (a span of layout alone is read as it is: there is nothing
    else, and no entity can begin on it)."""
    if not MAY_HOLD_WHITESPACE.search(span.text):
        return None
    kept = [token.i for token in span if not is_layout(token)]
    return kept if 0 < len(kept) < len(span) else None


def read_window(span: Span, lowercase_capitals: bool = True) -> Reading:
    """What the tagger reads of a prediction window."""
    positions = read_positions(span)
    lowered = tokens_in_capitals(span) if lowercase_capitals else set()
    if positions is None and not lowered:
        return Reading(span)
    return _copy(span.doc, list(range(span.start, span.end)) if positions is None else positions, lowered)


def read_training_segment(segment: Span, biluo: Sequence[str]) -> Tuple[Reading, List[str]]:
    """What the tagger reads of a training segment, and the gold BILUO tags
    of the tokens it reads. As written (no lower-casing: spacy_dtn.case_variants.v1
    trains on case), and as a whole where an entity would begin or end on a
    token left out (a tag sequence the constrained CRF forbids)."""
    positions = read_positions(segment)
    if positions is None:
        return Reading(segment), list(biluo)
    kept = set(positions)
    if any(tag[0] in "BLU" for i, tag in enumerate(biluo, segment.start) if i not in kept):
        return Reading(segment), list(biluo)
    return _copy(segment.doc, positions, set()), [biluo[i - segment.start] for i in positions]


def _copy(doc: Doc, positions: List[int], lowered: Set[int]) -> Reading:
    """A copy of the doc's tokens at `positions`, those in `lowered` in small
    letters; a token is followed by a space where one followed it, or where
    a token left out did. Each keeps its NORM ("n't" -> "not"), the word
    feature every tagger reads."""
    tokens = [doc[i] for i in positions]
    words = [token.lower_ if token.i in lowered else token.text for token in tokens]
    gaps = [after != before + 1 for before, after in zip(positions, positions[1:])] + [False]
    spaces = [bool(token.whitespace_) or gap for token, gap in zip(tokens, gaps)]
    copy = Doc(doc.vocab, words=words, spaces=spaces)
    copy.from_array([NORM], numpy.array([[token.norm] for token in tokens], dtype="uint64"))
    return Reading(copy[:], positions)
