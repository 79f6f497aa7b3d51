"""Gates that mix a layer's shared and target-private outputs (the DTN unit).

h = g * shared + (1 - g) * private, with g in (0, 1). A gate near 1 says the
target takes that layer from the shared copy, near 0 that it keeps its own,
which is what the component reports as the learned sharing scheme.
"""
from typing import Tuple

import torch
from torch import Tensor, nn

GATE_KINDS = ("scalar", "vector", "dynamic")


class Gate(nn.Module):
    """scalar: one g per layer; vector: one per dimension; dynamic: per token
    and dimension, computed from both inputs."""

    def __init__(self, kind: str, width: int) -> None:
        super().__init__()
        if kind not in GATE_KINDS:
            raise ValueError(
                f"Unknown gate {kind!r}: use one of {', '.join(GATE_KINDS)} "
                "(the architecture's `gate` setting)."
            )
        self.kind = kind
        if kind == "dynamic":
            self.mix = nn.Linear(2 * width, width)
            nn.init.zeros_(self.mix.weight)
            nn.init.zeros_(self.mix.bias)
        else:
            self.logit = nn.Parameter(torch.zeros(width if kind == "vector" else 1))

    def start_at(self, bias: float) -> None:
        """Start with gate sigmoid(bias) everywhere (0 -> an even mix)."""
        with torch.no_grad():
            (self.mix.bias if self.kind == "dynamic" else self.logit).fill_(bias)

    def forward(self, shared: Tensor, private: Tensor) -> Tuple[Tensor, Tensor]:
        if self.kind == "dynamic":
            gate = torch.sigmoid(self.mix(torch.cat([shared, private], dim=-1)))
        else:
            gate = torch.sigmoid(self.logit).expand_as(shared)
        # lerp: private + gate * (shared - private), the same mix in one pass
        # and one output; at prediction's batch sizes each temporary of the
        # three-term form is a fresh allocation, so this halves the gate's time.
        return torch.lerp(private, shared, gate), gate
