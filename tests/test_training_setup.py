"""Training set-up errors that must stop `spacy train` before the first update
(in `init_nlp`, which `spacy train` runs first), seeded determinism, and the
averaged weights spaCy evaluates and saves with `use_averages = true`.

The configs are the shipped ones with the small test settings, run in-process
through spaCy's own `init_nlp` and `train`.
"""
import io
import warnings
from pathlib import Path

import numpy
import pytest
import spacy
import torch
from spacy.tokens import DocBin
from spacy.training.initialize import init_nlp
from spacy.training.loop import train
from spacy.util import load_config, registry
from thinc.api import Adam

from spacy_dtn.corpus_checks import DevCorpusError
from spacy_dtn.plan import SOURCE, TARGET
from spacy_dtn.tagger_model import get_torch_module
from conftest import SMALL_SETTINGS, examples, make_nlp

CONFIGS = Path(__file__).parent.parent / "configs"
SMALL = {f"components.ner.model.settings.{k}": v for k, v in SMALL_SETTINGS.items() if k != "@misc"}
CHECK = "spacy_dtn.check_dev_corpus.v1"


def training_config(name: str, *, check=None, **paths):
    overrides = {
        **SMALL,
        **{f"paths.{key}": str(value) for key, value in paths.items()},
        "training.max_steps": 12,
        "training.eval_frequency": 6,
        "training.batcher.size": 100,
    }
    config = load_config(CONFIGS / name, overrides=overrides)
    if check is not None:
        config["initialize"]["after_init"] = {"@callbacks": CHECK, **check}
    return config


@pytest.fixture(scope="module")
def dev_sets(corpus_dir, tmp_path_factory):
    """An empty dev set, and one without entities of the target label."""
    root = tmp_path_factory.mktemp("dev")
    nlp = spacy.blank("en")
    DocBin().to_disk(root / "empty.spacy")
    docs = list(DocBin().from_disk(corpus_dir / "target.spacy").get_docs(nlp.vocab))
    for doc in docs:
        doc.ents = []
    DocBin(docs=docs).to_disk(root / "no_entities.spacy")
    return root


def trained_source(corpus_dir, path: Path, tag_scheme: str) -> Path:
    nlp = spacy.blank("en")
    nlp.add_pipe("dtn_ner", name="ner", config={
        "tag_scheme": tag_scheme,
        "model": {"@architectures": "spacy_dtn.HierarchicalTagger.v1", "settings": SMALL_SETTINGS},
    })
    nlp.initialize(lambda: examples(nlp, corpus_dir / "source.spacy", TARGET))
    nlp.to_disk(path)
    return path


# ---------------------------------------------------------------- (a) tag schemes


def test_source_with_another_tag_scheme_fails_in_initialize(corpus_dir, tmp_path):
    source = trained_source(corpus_dir, tmp_path / "bio-source", "BIO")
    nlp = make_nlp({"@architectures": "spacy_dtn.DynamicTransferTagger.v1", "gated": ["word_lstm"]})
    assert nlp.get_pipe("ner").cfg["tag_scheme"] == "BILUO"
    nlp.config["initialize"]["components"]["ner"] = {"source_model": str(source)}
    with pytest.raises(ValueError) as info:
        nlp.initialize(lambda: examples(nlp, corpus_dir / "target.spacy", TARGET))
    assert str(info.value) == (
        f"The source pipeline {str(source)!r} tags with BIO but 'ner' with BILUO: "
        "use the same tag_scheme in both configs."
    )


# ---------------------------------------------------------------- (d) shared output


def test_sharing_output_across_label_sets_fails_in_initialize_joint(corpus_dir):
    nlp = make_nlp({"@architectures": "spacy_dtn.SharedTransferTagger.v1", "shared": ["output", "word_lstm"]})
    both = examples(nlp, corpus_dir / "target.spacy", TARGET) + examples(nlp, corpus_dir / "source.spacy", SOURCE)
    with pytest.raises(ValueError, match=r"shared the `output` layer, but source and target have different tags: "
                                         r"source \['O', 'B-Chemical'.*target \['O', 'B-Disease', 'I-Disease', 'L-Disease', 'U-Disease'\]"):
        nlp.initialize(lambda: both)


def test_sharing_output_across_label_sets_fails_in_init_nlp_sequential(corpus_dir, tmp_path):
    source = trained_source(corpus_dir, tmp_path / "source", "BILUO")
    config = training_config(
        "scheme.cfg", train=corpus_dir / "target.spacy", dev=corpus_dir / "target.spacy", source_model=source,
    )
    config["components"]["ner"]["model"]["shared"] = ["output"]
    with pytest.raises(ValueError, match=r"Remove 'output' from the architecture's `shared`/`gated` list"):
        init_nlp(config)


# ---------------------------------------------------------------- (b), (c) dev corpus


def test_dev_check_passes_on_a_good_dev_set(corpus_dir):
    config = training_config("dtn.cfg", check={}, train=corpus_dir / "target.spacy", dev=corpus_dir / "target.spacy")
    nlp = init_nlp(config)
    assert nlp.get_pipe("ner").labels == ("Disease",)


def test_dev_set_missing_a_label_fails_before_training(corpus_dir):
    # Trained on the source (Chemical, Disease), evaluated on the target (Disease only).
    dev = corpus_dir / "target.spacy"
    config = training_config("baseline.cfg", check={}, train=corpus_dir / "source.spacy", dev=dev)
    with pytest.raises(DevCorpusError) as info:
        init_nlp(config)
    message = str(info.value)
    assert message.startswith(f"The label(s) ['Chemical'] of component 'ner' never occur in the dev corpus {dev} ")
    assert "labels found: ['Disease']" in message and "allow_missing_labels = true" in message


def test_dev_set_missing_a_label_is_allowed_when_configured(corpus_dir):
    config = training_config(
        "baseline.cfg", check={"allow_missing_labels": True},
        train=corpus_dir / "source.spacy", dev=corpus_dir / "target.spacy",
    )
    with pytest.warns(UserWarning, match=r"\['Chemical'\] of component 'ner' never occur"):
        nlp = init_nlp(config)
    assert nlp.get_pipe("ner").labels == ("Chemical", "Disease")


def test_dev_set_without_any_entities_names_the_label(corpus_dir, dev_sets):
    config = training_config("dtn.cfg", check={}, train=corpus_dir / "target.spacy", dev=dev_sets / "no_entities.spacy")
    with pytest.raises(DevCorpusError, match=r"\['Disease'\] of component 'ner' never occur in the dev corpus .*no_entities\.spacy .*labels found: \[\]"):
        init_nlp(config)


def test_empty_dev_set_fails_before_training(corpus_dir, dev_sets):
    config = training_config("dtn.cfg", check={}, train=corpus_dir / "target.spacy", dev=dev_sets / "empty.spacy")
    with pytest.raises(DevCorpusError, match=rf"No examples in the dev corpus {dev_sets / 'empty.spacy'} "
                                              r"\(\[training\] dev_corpus = 'corpora.dev'\)"):
        init_nlp(config)


def test_dev_check_callback_is_registered_and_names_a_missing_component(corpus_dir):
    check = registry.callbacks.get(CHECK)(component="tagger")
    config = training_config("dtn.cfg", train=corpus_dir / "target.spacy", dev=corpus_dir / "target.spacy")
    nlp = init_nlp(config)
    assert registry.callbacks.get(CHECK)()(nlp) is nlp
    with pytest.raises(DevCorpusError, match=r"names the component 'tagger', but the pipeline has \['ner'\]"):
        check(nlp)


# ---------------------------------------------------------------- determinism


def seeded_config(corpus_dir, seed: int):
    corpus = corpus_dir / "target.spacy"
    config = training_config("baseline.cfg", train=corpus, dev=corpus)
    config["system"]["seed"] = seed
    config["training"]["max_steps"] = 24
    config["training"]["eval_frequency"] = 12
    config["training"]["optimizer"]["learn_rate"] = 0.02
    return config


def weights(nlp):
    return {k: v.clone() for k, v in get_torch_module(nlp.get_pipe("ner").model).state_dict().items()}


def train_in_process(corpus_dir, seed: int):
    nlp = init_nlp(seeded_config(corpus_dir, seed))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nlp, _ = train(nlp, None, stdout=io.StringIO(), stderr=io.StringIO())
    return nlp.meta["performance"], weights(nlp)


def test_same_seed_gives_the_same_scores_and_weights(corpus_dir):
    scores, state = train_in_process(corpus_dir, seed=3)
    again_scores, again_state = train_in_process(corpus_dir, seed=3)
    assert scores["ents_f"] > 0.0
    assert again_scores == scores
    assert again_state.keys() == state.keys()
    assert all(torch.equal(again_state[k], state[k]) for k in state)
    # ...and the check can tell: the seed decides the weights.
    first, other = (weights(init_nlp(seeded_config(corpus_dir, seed))) for seed in (3, 4))
    assert not all(torch.equal(first[k], other[k]) for k in first)


# ---------------------------------------------------------------- averaged weights


def test_use_averages_evaluates_and_saves_the_averaged_torch_weights(corpus_dir):
    """With `use_averages = true` spaCy evaluates and saves inside
    `nlp.use_params(optimizer.averages)`: the torch weights must be the
    averages there, and the trained ones again after."""
    nlp = make_nlp({"@architectures": "spacy_dtn.HierarchicalTagger.v1"})
    target = examples(nlp, corpus_dir / "target.spacy", TARGET)
    nlp.initialize(lambda: target)
    optimizer = Adam(0.01, use_averages=True)
    for _ in range(5):
        nlp.update(target, sgd=optimizer)
    module = get_torch_module(nlp.get_pipe("ner").model)
    shim_id = nlp.get_pipe("ner").model.get_ref("torch").shims[0].id
    trained = weights(nlp)
    with nlp.use_params(optimizer.averages):
        averaged = weights(nlp)
        saved = nlp.to_bytes()
    for name, param in module.named_parameters():
        assert numpy.array_equal(averaged[name].numpy(), optimizer.averages[(shim_id, name)])
        assert torch.equal(param.data, trained[name])
    assert not all(torch.equal(averaged[k], trained[k]) for k in trained)
    loaded = weights(make_nlp({"@architectures": "spacy_dtn.HierarchicalTagger.v1"}).from_bytes(saved))
    assert all(torch.equal(loaded[k], averaged[k]) for k in averaged)
