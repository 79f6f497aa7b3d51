"""Seeded sub-sampling, to cut a corpus down to a low-resource target.

Experiments compare models across target sizes and seeds, so the same
(fraction or count, seed) must always pick the same documents, and the
picked documents keep their corpus order.
"""
import math
import random
from typing import List, Optional, Sequence, TypeVar

T = TypeVar("T")


def check_sampling_args(fraction: Optional[float], count: Optional[int]) -> None:
    """Fail early on sub-sampling arguments that can never work."""
    if fraction is not None and count is not None:
        raise ValueError("give either a fraction or a count to sub-sample, not both")
    if fraction is not None and not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
    if count is not None and count < 1:
        raise ValueError(f"count must be at least 1, got {count!r}")


def subsample(
    docs: Sequence[T],
    fraction: Optional[float] = None,
    count: Optional[int] = None,
    seed: int = 0,
) -> List[T]:
    """Pick `count` items, or `fraction` of them (rounded half up, at least
    one), uniformly at random with `seed`, in their original order."""
    check_sampling_args(fraction, count)
    if fraction is None and count is None:
        raise ValueError("give a fraction or a count to sub-sample")
    items = list(docs)
    if count is not None:
        n_keep = count
    else:
        n_keep = max(1, math.floor(fraction * len(items) + 0.5)) if items else 0
    if n_keep > len(items):
        raise ValueError(f"count={count} is more than the {len(items)} documents available")
    keep = sorted(random.Random(seed).sample(range(len(items)), n_keep))
    return [items[i] for i in keep]
