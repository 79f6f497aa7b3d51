"""Fixed sharing schemes tie exactly the named layers; gates interpolate the paths."""
import itertools

import pytest
import spacy
import torch

from spacy_dtn.plan import SHARABLE_LAYERS, SOURCE, TARGET
from spacy_dtn.tag_scheme import make_tag_names
from spacy_dtn.tagger_model import (
    TaggerSettings,
    TagSet,
    build_dynamic_transfer_tagger,
    build_shared_transfer_tagger,
    featurize,
    get_torch_module,
    set_tags,
)

SMALL = TaggerSettings(char_rows=50, char_width=4, char_hidden=3, word_rows=64, word_width=5, word_hidden=4, dropout=0.0)
ALL_SCHEMES = [list(c) for n in range(len(SHARABLE_LAYERS) + 1) for c in itertools.combinations(SHARABLE_LAYERS, n)]


def initialized(model, target_labels=("Disease",), source_labels=("Disease",)):
    set_tags(model, TagSet("BILUO", {TARGET: make_tag_names(target_labels, "BILUO"), SOURCE: make_tag_names(source_labels, "BILUO")}))
    model.initialize()
    return get_torch_module(model)


def param_ids(module):
    return {id(p) for p in module.parameters()}


@pytest.mark.parametrize("shared", ALL_SCHEMES, ids=lambda s: "+".join(s) or "none")
def test_scheme_ties_exactly_the_shared_layers(shared):
    module = initialized(build_shared_transfer_tagger(shared, SMALL))
    for layer in SHARABLE_LAYERS:
        (source,), (target,) = module.copies(layer, SOURCE), module.copies(layer, TARGET)
        if layer in shared:
            assert source is target
        else:
            assert not param_ids(source) & param_ids(target)


def test_sharing_output_with_different_label_sets_names_both():
    model = build_shared_transfer_tagger(["output"], SMALL)
    with pytest.raises(ValueError, match=r"source \['O', .*Chemical.*target \['O', .*Disease"):
        initialized(model, ("Disease",), ("Chemical", "Disease"))


def test_unknown_layer_name_is_an_error():
    with pytest.raises(ValueError, match="word_lstmm"):
        build_shared_transfer_tagger(["word_lstmm"], SMALL)


def batch(nlp):
    docs = [nlp("Patients with colon cancer received cisplatin ."), nlp("No signs of asthma .")]
    features = featurize([d[:] for d in docs], SMALL)
    return {k: torch.from_numpy(v) for k, v in features.items()}


def set_gates(module, logit):
    with torch.no_grad():
        for gate in module.gates.values():
            if gate.kind == "dynamic":
                gate.mix.weight.zero_()
                gate.mix.bias.fill_(logit)
            else:
                gate.logit.fill_(logit)
        if hasattr(module, "crf_gate"):
            module.crf_gate.fill_(logit)


@pytest.mark.parametrize("kind", ["scalar", "vector", "dynamic"])
def test_gate_one_takes_the_shared_path(kind):
    nlp = spacy.blank("en")
    module = initialized(build_dynamic_transfer_tagger(list(SHARABLE_LAYERS), SMALL, gate=kind)).eval()
    set_gates(module, 100.0)
    inputs = batch(nlp)
    target, _ = module(**inputs, task=TARGET)
    source, _ = module(**inputs, task=SOURCE)  # the source path reads only shared copies
    for t, s in zip(target, source):
        assert torch.equal(t, s)


@pytest.mark.parametrize("kind", ["scalar", "vector", "dynamic"])
def test_gate_zero_takes_the_private_path(kind):
    nlp = spacy.blank("en")
    dtn = initialized(build_dynamic_transfer_tagger(list(SHARABLE_LAYERS), SMALL, gate=kind)).eval()
    set_gates(dtn, -100.0)
    private_only = initialized(build_shared_transfer_tagger([], SMALL)).eval()
    target_weights = {k: v for k, v in dtn.state_dict().items() if f".{TARGET}." in k}
    missing, _ = private_only.load_state_dict(target_weights, strict=False)
    assert all(f".{TARGET}." not in k for k in missing)
    inputs = batch(nlp)
    for got, want in zip(dtn(**inputs, task=TARGET)[0], private_only(**inputs, task=TARGET)[0]):
        assert torch.allclose(got, want, atol=1e-6)
    # ...and not the shared path: the gate matters.
    assert not torch.allclose(dtn(**inputs, task=TARGET)[0].emissions, dtn(**inputs, task=SOURCE)[0].emissions)
