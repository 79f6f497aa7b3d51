"""Inference-only copies of a torch tagger: int8 dynamic quantisation for CPU serving.

Policy: the float module is the model: it trains, is saved and is loaded. A
quantized copy only predicts, and only where the component was asked for it
at load time. The copy quantizes the LSTM and Linear layers (weights to int8,
activations quantized on the fly, `torch.ao.quantization.quantize_dynamic`)
and shares every other tensor (the embedding tables, the CRF scores) with the
float module, so it costs the int8 weights, not a second model.
"""
import copy
import warnings

import torch
from torch import nn

QUANTIZED_LAYERS = {nn.LSTM, nn.Linear}


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


def _shallow_tree(module: nn.Module) -> nn.Module:
    """A copy of the module tree whose nodes are new but whose tensors are shared,
    so that swapping a layer in the copy leaves the original as it was."""
    clone = copy.copy(module)
    clone._parameters = dict(module._parameters)
    clone._buffers = dict(module._buffers)
    clone._modules = {name: _shallow_tree(child) for name, child in module._modules.items()}
    return clone
