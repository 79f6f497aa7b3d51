"""Inference-only helpers of a torch tagger: int8 dynamic quantisation,
bfloat16 autocast of a transformer and a cache of character summaries, for
CPU serving.

Policy: the float module is the model: it trains, is saved and is loaded. A
quantized copy only predicts, and only where the component was asked for it
at load time. The copy quantizes the LSTM and Linear layers (weights to int8,
activations quantized on the fly, `torch.ao.quantization.quantize_dynamic`)
and shares every other tensor (the embedding tables, the CRF scores) with the
float module, so it costs the int8 weights, not a second model. The
bfloat16 serving module is a wrapper that runs the float module under
torch's autocast (Linear, matmul and attention in bfloat16; other operations
keep their input's type, so activations stay bfloat16 between layers) and
hands its outputs back in float32: no weights of its own. A FormCache lives
for one prediction stream (`nlp.pipe`) and is never saved.
"""
import copy
import warnings
from typing import Any, Callable, Dict, Optional

import torch
from torch import nn

QUANTIZED_LAYERS = {nn.LSTM, nn.Linear}
MAX_CACHED_FORMS = 50_000  # x 2 * char_hidden floats: 10 MB at the default width


class FormCache:
    """Each word form's character summary (the gated char BiLSTM output), kept
    for the rest of a prediction stream. A summary depends on the form and the
    weights alone, so over an archive most forms are looked up instead of run
    through the character BiLSTM again. Keyed by ORTH (a form is a function of
    it). Past `max_forms` the cache starts over, so memory stays bounded."""

    def __init__(self, max_forms: int = MAX_CACHED_FORMS) -> None:
        self.max_forms = max_forms
        self.rows: Dict[int, int] = {}
        self.table: Optional[torch.Tensor] = None

    def lookup(self, keys: torch.Tensor, compute: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """The summaries of the distinct forms `keys`; `compute(indices)` gives
        those of the forms at `indices` that are not cached yet."""
        key_list = keys.tolist()
        missing = [i for i, key in enumerate(key_list) if key not in self.rows]
        if len(self.rows) + len(missing) > self.max_forms:
            self.rows, self.table = {}, None
            missing = list(range(len(key_list)))
            if len(missing) > self.max_forms:  # one batch larger than the cache: nothing to keep
                return compute(torch.arange(len(key_list)))
        if missing:
            new = compute(torch.tensor(missing, dtype=torch.long, device=keys.device))
            self.table = new if self.table is None else torch.cat([self.table, new])
            start = len(self.rows)
            self.rows.update((key_list[i], start + j) for j, i in enumerate(missing))
        return self.table[torch.tensor([self.rows[key] for key in key_list], dtype=torch.long, device=keys.device)]


def quantized_copy(module: nn.Module) -> nn.Module:
    """An eval-mode copy of `module` with int8 LSTM and Linear layers (CPU only)."""
    devices = {p.device.type for p in module.parameters()}
    if devices - {"cpu"}:
        raise ValueError(
            f"quantize = true is for CPU serving, but the tagger's weights are on {sorted(devices)}: "
            "load the pipeline on CPU, or set quantize = false for GPU inference."
        )
    with warnings.catch_warnings():
        # torch.ao.quantization warns that it will move to torchao (not a dependency);
        # the API is the one torch 2.1 to 2.13 ship.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*")
        clone = torch.ao.quantization.quantize_dynamic(
            _shallow_tree(module), QUANTIZED_LAYERS, dtype=torch.qint8, inplace=True
        )
    return clone.eval()


class BFloat16Autocast(nn.Module):
    """Runs `module` under bfloat16 autocast on the device of its weights and
    returns its floating-point outputs in float32, as callers of the float
    module expect (numpy, which Thinc converts them to, has no bfloat16)."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        device = next(self.module.parameters()).device.type
        with torch.autocast(device, dtype=torch.bfloat16):
            return _float32(self.module(*args, **kwargs))


def bfloat16_autocast(module: nn.Module) -> nn.Module:
    """`module` run under bfloat16 autocast (its weights, not a copy of them).
    Warns on a CPU without native bfloat16 (AVX512-BF16 or AMX), where
    oneDNN emulates it: the same predictions, but slower than float32."""
    devices = {p.device.type for p in module.parameters()}
    if devices == {"cpu"} and not cpu_has_bfloat16():
        warnings.warn(
            "bfloat16 = true, but this CPU has no native bfloat16 (AVX512-BF16 or AMX): the "
            "transformer will predict slower than in float32. Set bfloat16 = false here.",
            stacklevel=2,
        )
    return BFloat16Autocast(module)


def cpu_has_bfloat16() -> bool:
    """Whether the CPU computes bfloat16 natively. torch has no public query;
    these private ones test the two instruction sets (torch 2.13 has them).
    Where a torch lacks them, assume support rather than warn wrongly."""
    queries = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    if any(query is None for query in queries):
        return True
    return any(query() for query in queries)


def _float32(value: Any) -> Any:
    """Tensors in `value` (a tensor, a tuple or list, or a dict such as a
    transformers ModelOutput, which is one) with floats turned to float32."""
    if torch.is_tensor(value):
        return value.float() if value.is_floating_point() else value
    if isinstance(value, (tuple, list)):
        return type(value)(_float32(item) for item in value)
    if isinstance(value, dict):
        for key, item in list(value.items()):
            value[key] = _float32(item)
    return value


def _shallow_tree(module: nn.Module) -> nn.Module:
    """A copy of the module tree whose nodes are new but whose tensors are shared,
    so that swapping a layer in the copy leaves the original as it was."""
    clone = copy.copy(module)
    clone._parameters = dict(module._parameters)
    clone._buffers = dict(module._buffers)
    clone._modules = {name: _shallow_tree(child) for name, child in module._modules.items()}
    return clone
