"""Sequential transfer: start a transfer tagger's shared copies from a source model.

The source model is a single-task tagger (spacy_dtn.HierarchicalTagger.v1,
every layer in its "target" copy). Its weights go to the copies the source
task reads: the shared copy of shared and gated layers, the source copy of
private ones. Target-private copies keep their fresh initialisation.
"""
from typing import Dict

import torch

from .pytorch_tagger import PRIVATE, SHARABLE_LAYERS, SHARED, SOURCE, TARGET, TransferTagger, copy_name


def copy_source_weights(model: TransferTagger, source: TransferTagger, source_path: str) -> None:
    if source.tasks != [TARGET] or any(mode != PRIVATE for mode in source.plan.values()):
        raise ValueError(
            f"The source pipeline {source_path} was trained with a transfer architecture "
            f"(tasks {source.tasks}, plan {source.plan}). Train the source with "
            "spacy_dtn.HierarchicalTagger.v1 (configs/source.cfg)."
        )
    if SOURCE not in model.tasks:
        raise ValueError(
            "The tagger has no source task to transfer into: use "
            "spacy_dtn.SharedTransferTagger.v1 or spacy_dtn.DynamicTransferTagger.v1."
        )
    for layer in SHARABLE_LAYERS:
        destination = model.layers[layer][copy_name(model.plan[layer], SOURCE)]
        weights = source.layers[layer][TARGET].state_dict()
        try:
            destination.load_state_dict(weights)
        except RuntimeError as err:
            raise ValueError(
                f"The `{layer}` layer of the source pipeline {source_path} does not fit this "
                "tagger: use the same [components.ner.model.settings] in both configs. "
                f"PyTorch said: {err}"
            ) from None


def freeze_shared(model: TransferTagger) -> None:
    """Stop the optimiser from moving what the source taught (sequential, frozen)."""
    for layer in SHARABLE_LAYERS:
        if SHARED in model.layers[layer]:
            for param in model.layers[layer][SHARED].parameters():
                param.requires_grad_(False)


def shared_state(model: TransferTagger) -> Dict[str, torch.Tensor]:
    """The parameters the source task reads, keyed by layer and name (for checks)."""
    return {
        f"{layer}.{name}": value
        for layer in SHARABLE_LAYERS
        for name, value in model.layers[layer][copy_name(model.plan[layer], SOURCE)].state_dict().items()
    }
