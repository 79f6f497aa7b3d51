"""How docs are cut into the segments the tagger reads: bounded, and never through an entity.

The BiLSTM-CRF reads sentences where the doc has them, else the whole doc,
in segments of at most `max_length` tokens, so memory is bounded by the
segment, not by the document. Clinical notes are long and often have no
sentence boundaries, so where a sentence or doc is longer than that:

- in training, a cut falls only where no gold entity continues across it: a
  gold entity cut in two is a tag sequence the constrained CRF forbids (a
  loss of about 1e4 per cut and no signal). A cut moves back to the nearest
  such place; an entity longer than `max_length` is kept whole in a longer
  segment.
- in prediction, windows overlap by `margin` tokens on each side, and each
  window keeps the entities that start in its own part (`keep_start` to
  `keep_end`, which tile the doc): an entity near a window's edge is decoded
  from a window that holds it whole, with context on both sides.
"""
from dataclasses import dataclass
from typing import Callable, Iterator, List, Tuple

from spacy.tokens import Doc, Span


@dataclass(frozen=True)
class Window:
    """Tokens the tagger reads, and the doc positions whose entities it keeps."""

    span: Span
    keep_start: int
    keep_end: int

    def keeps(self, start: int) -> bool:
        return self.keep_start <= start < self.keep_end


def sentence_parts(doc: Doc) -> List[Span]:
    return list(doc.sents) if doc.has_annotation("SENT_START") else [doc[:]]


def prediction_windows(doc: Doc, max_length: int, margin: int) -> Iterator[Window]:
    """Windows of at most max_length tokens; within a part longer than that,
    consecutive windows share 2 * margin tokens."""
    margin = min(margin, (max_length - 1) // 2)  # each window keeps at least one token
    for part in sentence_parts(doc):
        start = part.start
        while True:
            end = min(start + max_length, part.end)
            keep_start = part.start if start == part.start else start + margin
            keep_end = part.end if end == part.end else end - margin
            yield Window(doc[start:end], keep_start, keep_end)
            if end == part.end:
                break
            start = end - 2 * margin


def training_windows(doc: Doc, max_length: int, can_cut: Callable[[int], bool]) -> Iterator[Span]:
    """Segments of at most max_length tokens (longer only for a longer entity)
    that start and end only at positions where `can_cut(i)` (a cut just before
    token i splits no gold entity)."""
    for part in sentence_parts(doc):
        for start, end in _cuts(part.start, part.end, max_length, can_cut):
            yield doc[start:end]


def _cuts(start: int, stop: int, max_length: int, can_cut: Callable[[int], bool]) -> Iterator[Tuple[int, int]]:
    while start < stop:
        end = min(start + max_length, stop)
        if end < stop:
            cut = end
            while cut > start and not can_cut(cut):
                cut -= 1
            if cut == start:  # one entity runs past max_length: keep it whole
                cut = end
                while cut < stop and not can_cut(cut):
                    cut += 1
            end = cut
        yield start, end
        start = end


def continues_entity(biluo_tag: str) -> bool:
    """Whether a token with this aligned BILUO tag continues the entity before it."""
    return bool(biluo_tag) and biluo_tag[0] in "IL"
