"""Entity confidence: CRF span marginals against brute force, and the
component's scores in doc.spans and Span._.confidence."""
import itertools

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_crf import constraints_for, random_crf

from spacy_dtn.pytorch_crf import TaggedSpans, span_marginals
from spacy_dtn.tag_scheme import entity_tags, extending_tag, spans_from_tags


def brute_force_span_probs(emissions, start, transitions, end, length, names, scheme):
    """P(span, label) for one row: enumerate every tag sequence, decode its
    entities and add up the probability of those that contain each."""
    seqs = torch.tensor(list(itertools.product(range(len(names)), repeat=length)))
    steps = torch.arange(length)
    scores = start[seqs[:, 0]] + end[seqs[:, -1]] + emissions[steps, seqs].sum(1)
    scores = scores + transitions[seqs[:, :-1], seqs[:, 1:]].sum(1)
    probs = torch.softmax(scores, 0)
    totals = {}
    for seq, p in zip(seqs.tolist(), probs.tolist()):
        if p > 0:
            for span in spans_from_tags([names[t] for t in seq], scheme):
                totals[span] = totals.get(span, 0.0) + p
    return totals


def pin(candidates, names, scheme):
    """TaggedSpans for (row, start, end, label) candidates."""
    index = {tag: i for i, tag in enumerate(names)}
    width = max(e - s for _, s, e, _ in candidates)
    tags = [[index[t] for t in entity_tags(label, e - s, scheme)] for _, s, e, label in candidates]
    forbidden = [extending_tag(label, scheme) for *_, label in candidates]
    return TaggedSpans(
        rows=torch.tensor([r for r, *_ in candidates]),
        starts=torch.tensor([s for _, s, _, _ in candidates]),
        tags=torch.tensor([row + [0] * (width - len(row)) for row in tags]),
        lengths=torch.tensor([e - s for _, s, e, _ in candidates]),
        next_not=torch.tensor([index[f] if f else -1 for f in forbidden]),
    )


@settings(max_examples=40, deadline=None)
@given(
    scheme=st.sampled_from(["BIO", "BILUO"]),
    length=st.integers(1, 4),
    seed=st.integers(0, 10_000),
    scale=st.floats(0.1, 5.0),
)
def test_span_marginals_match_brute_force(scheme, length, seed, scale):
    names, constraints = constraints_for(scheme)
    emissions, start, transitions, end, mask = random_crf(3, length, len(names), seed)
    params = constraints.apply(start * scale, transitions * scale, end * scale, penalty=float("-inf"))
    emissions = emissions * scale
    expected, candidates = {}, []
    for row in range(3):
        n = int(mask[row].sum())
        for span, p in brute_force_span_probs(emissions[row], *params, n, names, scheme).items():
            expected[(row, *span)] = p
        # Every span and label, also the impossible ones (probability 0).
        candidates += [(row, s, e, label) for s in range(n) for e in range(s + 1, n + 1) for label in "AB"]
    got = span_marginals(emissions, *params, mask, pin(candidates, names, scheme))
    assert ((got >= 0) & (got <= 1)).all()
    for candidate, p in zip(candidates, got.tolist()):
        assert abs(p - expected.get(candidate, 0.0)) < 1e-9, candidate
    assert any(p > 0 for p in expected.values())
