"""Sequential transfer: start a transfer tagger's shared copies from a source model.

The source model is a single-task tagger (spacy_dtn.HierarchicalTagger.v1,
or a transfer architecture trained without a source: every layer in its
"target" copy). Its weights go to the copies the source task reads: the shared
copy of shared and gated layers, the source copy of private ones.
Target-private copies keep their fresh initialisation, except the rows of a
private or gated `output` layer for tags the two tasks have in common: those
start from the source's rows (linear weights and bias, CRF start, end and the
transitions among common tags), as spaCy's sourced `ner` keeps what it learned
about a label. Tags are in common by name or by a user's label map (source
label -> target label); a label the map names is matched by the map only.
The rows are only initialised: the target trains them freely. Featurizer
weights (a transformer) are one copy for both tasks and are taken over whole.
"""
from typing import Dict, Mapping, Sequence, Set

import torch
from thinc.api import Model

from .label_matching import paired_labels
from .plan import PRIVATE, SHARED, SOURCE, TARGET
from .pytorch_tagger import OutputLayer, TransferTagger
from .tag_scheme import OUTSIDE, make_tag_names
from .tagger_model import SETTINGS_ATTR, get_torch_module, torch_shims

# Target tag index -> source tag index, for the tags the two tasks have in common.
RowMap = Dict[int, int]


def copy_source_weights(
    model: Model, source_model: Model, source_path: str, component: str, output_rows: Mapping[int, int] = {}
) -> None:
    """Copy the source's weights into the copies the source task reads, and
    the `output_rows` (see `common_tag_rows`) into the target's own output copy."""
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
    check_same_word_features(model, source_model, source_path)
    for layer in tagger.plan:
        (destination,) = tagger.copies(layer, SOURCE)
        weights = source.layers[layer][TARGET].state_dict()
        try:
            destination.load_state_dict(weights)
        except RuntimeError as err:
            raise ValueError(
                f"The `{layer}` layer of the source pipeline {source_path} does not fit this "
                "tagger: use the same layer sizes and static vectors ([initialize.vectors]) in both configs. "
                f"PyTorch said: {err}"
            ) from None
    if output_rows and TARGET in tagger.layers["output"]:
        copy_output_rows(tagger.layers["output"][TARGET], source.layers["output"][TARGET], output_rows)
    if model.has_ref("features"):
        check_same_transformer(model.get_ref("features"), source_model.get_ref("features"), source_path, component)
        try:
            model.get_ref("features").from_bytes(source_model.get_ref("features").to_bytes())
        except ValueError as err:
            raise ValueError(
                f"The token features (transformer) of the source pipeline {source_path} do not fit "
                f"this tagger: use the same [components.{component}.model.tok2vec] in both configs. {err}"
            ) from None


def check_same_word_features(model: Model, source_model: Model, source_path: str) -> None:
    """Hashed word rows mean the same only when both taggers hash the same
    features: a table's shape would fit either way, so say it here."""
    ours, theirs = (m.attrs.get(SETTINGS_ATTR) for m in (model, source_model))
    if ours is not None and theirs is not None and ours.word_features != theirs.word_features:
        raise ValueError(
            f"The source pipeline {source_path} hashes the word features {list(theirs.word_features)}, "
            f"this tagger {list(ours.word_features)}: set the same `word_features` in both configs' "
            "[...model.settings] and retrain the source."
        )


def check_same_transformer(features: Model, source_features: Model, source_path: str, component: str) -> None:
    """The source's transformer is taken over whole, with its own model config:
    loaded into a tagger configured with another depth (`num_hidden_layers`) or
    model, it would replace it silently, and the target's config would describe
    a transformer it does not have. Say so instead."""
    ours, theirs = _transformer_weight_names(features), _transformer_weight_names(source_features)
    if ours != theirs:
        missing, extra = sorted(ours - theirs), sorted(theirs - ours)
        raise ValueError(
            f"The transformer of the source pipeline {source_path} is not the one this tagger is "
            f"configured with. Weights only this tagger has: {len(missing)} {missing[:2]}; only the source "
            f"has: {len(extra)} {extra[:2]}. Train the source with the same "
            f"[components.{component}.model.tok2vec] (name and transformer_config, e.g. num_hidden_layers)."
        )


def _transformer_weight_names(features: Model) -> Set[str]:
    return {name for shim in torch_shims(features) for name, _ in shim._model.named_parameters()}


def common_tag_rows(
    source_labels: Sequence[str],
    target_labels: Sequence[str],
    label_map: Mapping[str, str],
    tag_scheme: str,
    where: str,
) -> RowMap:
    """The output rows the target can start from: "O", and every tag of a
    target label that a source label has by name or by `label_map`."""
    unknown_source = sorted(set(label_map) - set(source_labels))
    unknown_target = sorted(set(label_map.values()) - set(target_labels))
    if unknown_source or unknown_target:
        raise ValueError(
            f"The label_map in {where} names labels the pipelines do not have: source "
            f"{unknown_source or 'none'} (the source has {sorted(source_labels)}), target "
            f"{unknown_target or 'none'} (the target has {sorted(target_labels)}). "
            "Map source labels to target labels, e.g. {\"GENE\": \"Gene_or_gene_product\"}."
        )
    mapped = sorted(label_map.values())
    twice = sorted({label for label in mapped if mapped.count(label) > 1})
    if twice:
        raise ValueError(
            f"The label_map in {where} maps several source labels to {twice}: a target "
            "label's rows can start from one source label only."
        )
    pairs = paired_labels(source_labels, target_labels, label_map)
    source_index = {tag: i for i, tag in enumerate(make_tag_names(source_labels, tag_scheme))}
    target_index = {tag: i for i, tag in enumerate(make_tag_names(target_labels, tag_scheme))}
    rows = {target_index[OUTSIDE]: source_index[OUTSIDE]}
    for target, source in pairs.items():
        for target_tag, source_tag in zip(make_tag_names([target], tag_scheme), make_tag_names([source], tag_scheme)):
            rows[target_index[target_tag]] = source_index[source_tag]
    return rows


def copy_output_rows(destination: OutputLayer, origin: OutputLayer, rows: Mapping[int, int]) -> None:
    """Overwrite the destination's rows (and CRF scores among them) with the origin's."""
    to = torch.tensor(list(rows.keys()))
    of = torch.tensor(list(rows.values()))
    with torch.no_grad():
        destination.linear.weight[to] = origin.linear.weight[of]
        destination.linear.bias[to] = origin.linear.bias[of]
        destination.start[to] = origin.start[of]
        destination.end[to] = origin.end[of]
        destination.transitions[to.unsqueeze(1), to] = origin.transitions[of.unsqueeze(1), of]


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
