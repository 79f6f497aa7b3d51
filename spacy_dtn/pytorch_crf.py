"""Linear-chain CRF over padded batches: log-likelihood and constrained Viterbi.

The CRF has no parameters of its own here: the transition scores live in the
tagger module (so the torch optimiser step of the wrapped model updates them),
and these functions take them as tensors. Illegal transitions get a large
negative score in training (keeps gradients finite) and minus infinity in
decoding (so an invalid tag sequence can never win).
"""
from typing import List, NamedTuple, Sequence, Tuple

import torch
from torch import Tensor

TRAIN_PENALTY = -1e4


class CRFScores(NamedTuple):
    """What a tagger's forward pass returns: emissions (B, T, K), the CRF's
    start, transition and end scores for the task, and the token mask (B, T)."""

    emissions: Tensor
    start: Tensor
    transitions: Tensor
    end: Tensor
    mask: Tensor


class TagConstraints(torch.nn.Module):
    """Legal-transition masks as buffers, so they move with the module's device."""

    def __init__(self, start: Tensor, transitions: Tensor, end: Tensor) -> None:
        super().__init__()
        self.register_buffer("start", start.bool(), persistent=False)
        self.register_buffer("transitions", transitions.bool(), persistent=False)
        self.register_buffer("end", end.bool(), persistent=False)

    def apply(
        self, start: Tensor, transitions: Tensor, end: Tensor, penalty: float
    ) -> Tuple[Tensor, Tensor, Tensor]:
        return (
            start.masked_fill(~self.start, penalty),
            transitions.masked_fill(~self.transitions, penalty),
            end.masked_fill(~self.end, penalty),
        )


def log_partition(
    emissions: Tensor, start: Tensor, transitions: Tensor, end: Tensor, mask: Tensor
) -> Tensor:
    """Forward algorithm in log space; emissions (B, T, K), mask (B, T) -> (B,)."""
    alpha = start + emissions[:, 0]
    for t in range(1, emissions.shape[1]):
        step = torch.logsumexp(alpha.unsqueeze(2) + transitions, dim=1) + emissions[:, t]
        alpha = torch.where(mask[:, t : t + 1], step, alpha)
    return torch.logsumexp(alpha + end, dim=1)


def sequence_score(
    emissions: Tensor, tags: Tensor, start: Tensor, transitions: Tensor, end: Tensor, mask: Tensor
) -> Tensor:
    """Unnormalised score of the given tag sequences (B, T) -> (B,)."""
    maskf = mask.to(emissions.dtype)
    emit = emissions.gather(2, tags.unsqueeze(2)).squeeze(2)
    score = start[tags[:, 0]] + (emit * maskf).sum(1)
    trans = transitions[tags[:, :-1], tags[:, 1:]]
    score = score + (trans * maskf[:, 1:]).sum(1)
    last = tags.gather(1, (mask.sum(1, keepdim=True) - 1).clamp(min=0)).squeeze(1)
    return score + end[last]


def negative_log_likelihood(
    emissions: Tensor, tags: Tensor, start: Tensor, transitions: Tensor, end: Tensor, mask: Tensor
) -> Tensor:
    """Per-sequence NLL (B,) of the gold tags."""
    gold = sequence_score(emissions, tags, start, transitions, end, mask)
    return log_partition(emissions, start, transitions, end, mask) - gold


def viterbi_decode(
    emissions: Tensor, start: Tensor, transitions: Tensor, end: Tensor, mask: Tensor
) -> List[List[int]]:
    """Best tag sequence per row, each as long as its mask."""
    batch, length, _ = emissions.shape
    score = start + emissions[:, 0]
    backpointers = []
    for t in range(1, length):
        best, idx = (score.unsqueeze(2) + transitions).max(dim=1)
        step = best + emissions[:, t]
        keep = mask[:, t : t + 1]
        score = torch.where(keep, step, score)
        # Padded steps point to themselves so backtracking passes through them.
        backpointers.append(torch.where(keep, idx, torch.arange(idx.shape[1], device=idx.device)))
    last = (score + end).argmax(dim=1)
    path = [last]
    for bp in reversed(backpointers):
        last = bp.gather(1, last.unsqueeze(1)).squeeze(1)
        path.append(last)
    best_paths = torch.stack(path[::-1], dim=1).tolist()
    lengths = mask.sum(1).tolist()
    return [best_paths[b][: lengths[b]] for b in range(batch)]


def crf_loss(scores: CRFScores, gold: Sequence[Sequence[int]]) -> Tuple[float, CRFScores]:
    """Summed NLL of the gold tag ids (one list per row, as long as its mask)
    and its gradient with respect to each score tensor (None for the mask)."""
    emissions, start, transitions, end, mask = scores
    tags = torch.zeros(mask.shape, dtype=torch.long, device=emissions.device)
    for b, row in enumerate(gold):
        tags[b, : len(row)] = torch.tensor(row, dtype=torch.long)
    nll = negative_log_likelihood(emissions, tags, start, transitions, end, mask).sum()
    grads = torch.autograd.grad(nll, [emissions, start, transitions, end])
    return float(nll.detach()), CRFScores(*grads, None)
