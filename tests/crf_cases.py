"""Random CRFs and brute-force enumeration over every tag sequence: what the
CRF code (test_crf.py) and entity confidence (test_confidence.py,
test_transformer.py) are checked against."""
import itertools

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spacy_dtn.confidence import entity_confidences
from spacy_dtn.plan import TARGET
from spacy_dtn.pytorch_crf import TagConstraints
from spacy_dtn.tag_scheme import allowed_transitions, make_tag_names, spans_from_tags


def random_crf(batch, length, n_tags, seed):
    gen = torch.Generator().manual_seed(seed)
    emissions = torch.randn(batch, length, n_tags, generator=gen, dtype=torch.float64)
    start, end = torch.randn(n_tags, generator=gen, dtype=torch.float64), torch.randn(n_tags, generator=gen, dtype=torch.float64)
    transitions = torch.randn(n_tags, n_tags, generator=gen, dtype=torch.float64)
    lengths = torch.randint(1, length + 1, (batch,), generator=gen)
    lengths[0] = length
    mask = torch.arange(length) < lengths.unsqueeze(1)
    return emissions, start, transitions, end, mask


def constraints_for(scheme):
    names = make_tag_names(["A", "B"], scheme)
    masks = [torch.from_numpy(m) for m in allowed_transitions(names, scheme)]
    return names, TagConstraints(*masks)


def random_crf_cases(max_examples: int, max_length: int, max_scale: float):
    """Hypothesis cases for random_crf under a tag scheme: scheme, length, seed, scale."""
    cases = given(
        scheme=st.sampled_from(["BIO", "BILUO"]),
        length=st.integers(1, max_length),
        seed=st.integers(0, 10_000),
        scale=st.floats(0.1, max_scale),
    )
    return lambda test: settings(max_examples=max_examples, deadline=None)(cases(test))


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


def assert_matches_brute_force(ner, doc):
    """Every span and label of the doc: the component's confidence function
    against enumeration over the model's own CRF scores."""
    names = ner.tag_names(TARGET)
    outputs = ner.model.predict(([doc[:]], TARGET))
    emissions, start, transitions, end, mask = (x.double() if x.is_floating_point() else x for x in outputs[0])
    expected = brute_force_span_probs(emissions[0], start, transitions, end, len(doc), names, ner.cfg["tag_scheme"])
    candidates = [(s, e, label) for s in range(len(doc)) for e in range(s + 1, len(doc) + 1) for label in ner.labels]
    (got,) = entity_confidences(outputs, [candidates], names, ner.cfg["tag_scheme"])
    assert max(abs(p - expected.get(c, 0.0)) for c, p in zip(candidates, got)) < 1e-4
    assert any(p > 0.01 for p in got)
