"""The CRF against brute force over every tag sequence of small inputs."""
import itertools

import pytest
import torch

from spacy_dtn.pytorch_crf import (
    log_partition,
    negative_log_likelihood,
    sequence_score,
    viterbi_decode,
)
from spacy_dtn.tag_scheme import spans_from_tags

from crf_cases import constraints_for, random_crf, random_crf_cases


def all_scores(emissions, start, transitions, end, length):
    """Score of every tag sequence of one row, by enumeration."""
    n_tags = emissions.shape[-1]
    out = {}
    for seq in itertools.product(range(n_tags), repeat=length):
        s = start[seq[0]] + end[seq[-1]] + sum(emissions[t, k] for t, k in enumerate(seq))
        s = s + sum(transitions[a, b] for a, b in zip(seq, seq[1:]))
        out[seq] = s
    return out


@pytest.mark.parametrize("seed", range(5))
def test_log_partition_and_viterbi_match_brute_force(seed):
    emissions, start, transitions, end, mask = random_crf(3, 4, 3, seed)
    log_z = log_partition(emissions, start, transitions, end, mask)
    paths = viterbi_decode(emissions, start, transitions, end, mask)
    for b in range(3):
        length = int(mask[b].sum())
        scores = all_scores(emissions[b], start, transitions, end, length)
        expected = torch.logsumexp(torch.stack(list(scores.values())), 0)
        assert torch.allclose(log_z[b], expected)
        best = max(scores, key=lambda k: scores[k])
        assert tuple(paths[b]) == best


def test_sequence_score_and_nll_match_brute_force():
    emissions, start, transitions, end, mask = random_crf(2, 3, 3, seed=7)
    tags = torch.tensor([[2, 0, 1], [1, 1, 0]])
    scores = sequence_score(emissions, tags, start, transitions, end, mask)
    nll = negative_log_likelihood(emissions, tags, start, transitions, end, mask)
    for b in range(2):
        length = int(mask[b].sum())
        table = all_scores(emissions[b], start, transitions, end, length)
        gold = tuple(tags[b, :length].tolist())
        assert torch.allclose(scores[b], table[gold])
        log_z = torch.logsumexp(torch.stack(list(table.values())), 0)
        assert torch.allclose(nll[b], log_z - table[gold])


def is_valid(tags, scheme):
    """Independent validity check: re-derive tags from the decoded spans."""
    spans = spans_from_tags(tags, scheme)
    rebuilt = ["O"] * len(tags)
    for s, e, label in spans:
        if scheme == "BIO":
            rebuilt[s:e] = [f"B-{label}"] + [f"I-{label}"] * (e - s - 1)
        elif e - s == 1:
            rebuilt[s] = f"U-{label}"
        else:
            rebuilt[s:e] = [f"B-{label}"] + [f"I-{label}"] * (e - s - 2) + [f"L-{label}"]
    return rebuilt == list(tags)


@random_crf_cases(max_examples=60, max_length=7, max_scale=50.0)
def test_constrained_decoding_never_emits_invalid_sequences(scheme, length, seed, scale):
    names, constraints = constraints_for(scheme)
    emissions, start, transitions, end, mask = random_crf(4, length, len(names), seed)
    emissions = emissions * scale
    params = constraints.apply(start, transitions, end, penalty=float("-inf"))
    for path in viterbi_decode(emissions, *params, mask):
        assert is_valid([names[t] for t in path], scheme)


def test_unconstrained_decoding_can_be_invalid():
    """The property above is not vacuous: without constraints, bad emissions win."""
    names, _ = constraints_for("BILUO")
    emissions = torch.full((1, 2, len(names)), -5.0)
    emissions[0, 0, names.index("I-A")] = 5.0
    zeros = torch.zeros(len(names))
    path = viterbi_decode(emissions, zeros, torch.zeros(len(names), len(names)), zeros, torch.ones(1, 2, dtype=torch.bool))[0]
    assert not is_valid([names[t] for t in path], "BILUO")
