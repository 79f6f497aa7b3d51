"""Sequential transfer: start a transfer tagger's shared copies from a source model.

The source model is a single-task tagger (spacy_dtn.HierarchicalTagger.v1,
or a transfer architecture trained without a source: every layer in its
"target" copy). Its weights go to the copies the source task reads: the shared
copy of shared and gated layers, the source copy of private ones.
Target-private copies keep their fresh initialisation. Featurizer weights (a
transformer) are one copy for both tasks and are taken over whole.
"""
from typing import Dict

import torch
from thinc.api import Model

from .plan import PRIVATE, SHARED, SOURCE, TARGET
from .pytorch_tagger import TransferTagger
from .tagger_model import get_torch_module


def copy_source_weights(model: Model, source_model: Model, source_path: str, component: str) -> None:
    tagger, source = get_torch_module(model), get_torch_module(source_model)
    if source.tasks != [TARGET] or any(mode != PRIVATE for mode in source.plan.values()):
        raise ValueError(
            f"The source pipeline {source_path} was trained with a transfer architecture "
            f"(tasks {source.tasks}, plan {source.plan}). Train the source as a single task: "
            "configs/source.cfg, or configs/source_trf.cfg for the transformer variant."
        )
    if SOURCE not in tagger.tasks:
        raise ValueError(
            "The tagger has no source task to transfer into: use "
            "spacy_dtn.SharedTransferTagger.v1, spacy_dtn.DynamicTransferTagger.v1 or "
            "spacy_dtn.TransformerTransferTagger.v1."
        )
    if set(source.plan) != set(tagger.plan):
        raise ValueError(
            f"The source pipeline {source_path} has the layers {sorted(source.plan)}, this tagger "
            f"{sorted(tagger.plan)}: train the source with the same kind of architecture "
            "(configs/source.cfg for the BiLSTM-CRF, configs/source_trf.cfg for the transformer)."
        )
    for layer in tagger.plan:
        (destination,) = tagger.copies(layer, SOURCE)
        weights = source.layers[layer][TARGET].state_dict()
        try:
            destination.load_state_dict(weights)
        except RuntimeError as err:
            raise ValueError(
                f"The `{layer}` layer of the source pipeline {source_path} does not fit this "
                "tagger: use the same layer sizes in both configs. "
                f"PyTorch said: {err}"
            ) from None
    if model.has_ref("features"):
        try:
            model.get_ref("features").from_bytes(source_model.get_ref("features").to_bytes())
        except ValueError as err:
            raise ValueError(
                f"The token features (transformer) of the source pipeline {source_path} do not fit "
                f"this tagger: use the same [components.{component}.model.tok2vec] in both configs. {err}"
            ) from None


def freeze_shared_copies(model: Model) -> None:
    """Stop the optimiser from moving what the source taught (sequential, frozen)."""
    tagger = get_torch_module(model)
    for layer in tagger.plan:
        if SHARED in tagger.layers[layer]:
            for param in tagger.layers[layer][SHARED].parameters():
                param.requires_grad_(False)


def shared_state(model: TransferTagger) -> Dict[str, torch.Tensor]:
    """The parameters the source task reads, keyed by layer and name (for checks)."""
    return {
        f"{layer}.{name}": value
        for layer in model.plan
        for name, value in model.copies(layer, SOURCE)[0].state_dict().items()
    }
