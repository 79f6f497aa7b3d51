"""Entity confidence: the CRF's probability that exactly this span carries
exactly this label, exposed the way spaCy's spancat exposes span scores.

Policy:
- a confidence is a span marginal of the CRF (pytorch_crf.span_marginals),
  computed for the decoded entities only: one forward pass per tagging batch
  over the windows that have an entity and one constrained copy per entity,
  on the scores the decoder read (no entity begins or ends on whitespace:
  DynamicTransferNER.predict), so the paths it forbids weigh nothing;
- the CRF's scores are divided by a temperature first (1 = the model as
  trained; calibration.py fits another on dev data), which keeps the decoded
  entities unchanged and only sharpens or flattens their probabilities;
- a component writes its entities with their scores to `doc.spans[key]`
  (scores in `attrs["scores"]`, in span order, as spancat does), so they
  travel with the Doc through `to_bytes`, `DocBin` and `nlp.pipe(n_process=)`;
- `Span._.confidence` reads them back: the score of the first scored span
  group holding exactly this span (start, end, label), None where none does
  (an entity set by another component). A lookup is a binary search, which
  finds the span in a group in (start, end) order; a group the component
  wrote is in that order and says so (`attrs["in_span_order"]`), so there a
  miss is final. Any other group (spancat's, one a user rebuilt, one whose
  spans and scores no longer match in number) is scanned after a miss. A
  group changed in place must keep that order or drop the mark.
"""
from typing import List, Optional, Sequence, Tuple

import numpy
import torch
from spacy.tokens import Doc, Span, SpanGroup

from .pytorch_crf import TaggedSpans, span_marginals
from .tag_scheme import entity_tags, extending_tag
from .tagger_model import TaggerOutput

SCORES_ATTR = "scores"
IN_ORDER_ATTR = "in_span_order"
EXTENSION = "confidence"
# (start, end, label) of the entities found in one tagged segment.
SegmentSpans = Sequence[Tuple[int, int, str]]


def entity_confidences(
    outputs: TaggerOutput,
    spans: Sequence[SegmentSpans],
    tag_names: Sequence[str],
    tag_scheme: str,
    temperature: float = 1.0,
) -> List[List[float]]:
    """The confidence of each entity of each segment of one tagging batch
    (`outputs`: the tagger's prediction for the batch)."""
    emissions, start, transitions, end, mask = outputs[0]
    rows = [b for b, found in enumerate(spans) if found]
    if not rows:
        return [[] for _ in spans]
    pinned = _pin(spans, rows, tag_names, tag_scheme, emissions.device)
    with torch.no_grad():
        scaled = [x / temperature for x in (emissions[rows], start, transitions, end)]
        probs = span_marginals(*scaled, mask[rows], pinned).tolist()
    out: List[List[float]] = []
    for found in spans:
        out.append(probs[: len(found)])
        probs = probs[len(found) :]
    return out


def _pin(
    spans: Sequence[SegmentSpans], rows: List[int], tag_names: Sequence[str], tag_scheme: str, device
) -> TaggedSpans:
    """TaggedSpans for the entities of the `rows` (renumbered 0..len(rows)-1)."""
    index = {tag: i for i, tag in enumerate(tag_names)}
    items = [(r, s, e, label) for r, b in enumerate(rows) for s, e, label in spans[b]]
    width = max(e - s for _, s, e, _ in items)
    tags = []
    for _, s, e, label in items:
        ids = [index[t] for t in entity_tags(label, e - s, tag_scheme)]
        tags.append(ids + [0] * (width - len(ids)))
    banned = [extending_tag(label, tag_scheme) for *_, label in items]

    def tensor(values: list) -> torch.Tensor:
        return torch.tensor(values, dtype=torch.long, device=device)

    return TaggedSpans(
        rows=tensor([r for r, *_ in items]),
        starts=tensor([s for _, s, _, _ in items]),
        tags=tensor(tags),
        lengths=tensor([e - s for _, s, e, _ in items]),
        next_not=tensor([index[t] if t else -1 for t in banned]),
    )


def set_scored_spans(doc: Doc, key: str, spans: Sequence[Span], scores: Sequence[float]) -> None:
    """Put the entities and their scores in doc.spans[key], as spancat does,
    in (start, end) order, which lets span_confidence find a span by binary
    search."""
    order = sorted(range(len(spans)), key=lambda i: (spans[i].start, spans[i].end))
    group = SpanGroup(doc, name=key, spans=[spans[i] for i in order])
    group.attrs[SCORES_ATTR] = numpy.asarray([scores[i] for i in order], dtype="float32")
    group.attrs[IN_ORDER_ATTR] = True
    doc.spans[key] = group


def span_confidence(span: Span) -> Optional[float]:
    """Getter of Span._.confidence (see the module docstring)."""
    for group in span.doc.spans.values():
        scores = group.attrs.get(SCORES_ATTR)
        if scores is None:
            continue
        index = _sorted_member_index(group, span)
        if index is None and not (group.attrs.get(IN_ORDER_ATTR) and len(scores) == len(group)):
            index = _member_index(group, span)
        if index is not None and index < len(scores):
            return float(scores[index])
    return None


def _member_index(group: SpanGroup, span: Span) -> Optional[int]:
    """The index of the first member with the span's start, end and label, by a scan."""
    wanted = (span.start, span.end, span.label)
    return next((i for i, m in enumerate(group) if (m.start, m.end, m.label) == wanted), None)


def _sorted_member_index(group: SpanGroup, span: Span) -> Optional[int]:
    """The index of a member with the span's start, end and label, by binary
    search (the first one where the group is in (start, end) order), so that
    reading every entity's confidence of a long note stays linear, also for
    entities the group does not hold (another component's)."""
    where, lo, hi = (span.start, span.end), 0, len(group)
    while lo < hi:
        mid = (lo + hi) // 2
        member = group[mid]  # SpanGroup builds a new Span per index
        if (member.start, member.end) < where:
            lo = mid + 1
        else:
            hi = mid
    for index in range(lo, len(group)):
        member = group[index]
        if (member.start, member.end) != where:
            break
        if member.label == span.label:
            return index
    return None


if not Span.has_extension(EXTENSION):
    Span.set_extension(EXTENSION, getter=span_confidence)
