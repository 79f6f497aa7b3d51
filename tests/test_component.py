"""The dtn_ner component: routing of source/target updates, sequential transfer
from a source pipeline, serialization and multiprocessing."""

from typing import List

import pytest
import spacy
import torch
from thinc.api import Adam, Model, fix_random_seed

from conftest import CONFIGS, SMALL_SETTINGS, entities, examples, make_nlp, trained_target_nlp
from spacy_dtn.plan import SHARABLE_LAYERS, SOURCE, TARGET
from spacy_dtn.source_weights import shared_state
from spacy_dtn.pytorch_tagger import GATE_PARAMETERS
from spacy_dtn.pytorch_crf import CRFScores
from spacy_dtn.tag_scheme import boundary_tags, continuing_tags, make_tag_names
from spacy_dtn.tagger_model import check_learn_rate_scale, forbid_tags, get_torch_module, initialize_for_loading, whitespace_flags


def snapshot(module, copy):
    return {k: v.clone() for k, v in module.state_dict().items() if f".{copy}." in k}


@pytest.mark.parametrize(
    "architecture",
    [
        {"@architectures": "spacy_dtn.DynamicTransferTagger.v1", "gated": list(SHARABLE_LAYERS[:4])},
        {"@architectures": "spacy_dtn.SharedTransferTagger.v1", "shared": ["char_lstm", "word_lstm"]},
    ],
    ids=["dtn", "scheme"],
)
def test_source_batch_leaves_target_private_copies_unchanged(corpus_dir, architecture):
    nlp = make_nlp(architecture)
    target = examples(nlp, corpus_dir / "target.spacy", TARGET)
    source = examples(nlp, corpus_dir / "source.spacy", SOURCE)
    nlp.initialize(lambda: target + source)
    optimizer = nlp.create_optimizer()
    nlp.update(target[:4], sgd=optimizer)  # gives Adam momentum for target params
    module = get_torch_module(nlp.get_pipe("ner").model)
    before_target, before_shared = snapshot(module, TARGET), snapshot(module, "shared")
    gates_before = {k: v.clone() for k, v in module.gates.state_dict().items()}
    nlp.update(source[:4], sgd=optimizer)
    after_target, after_shared = snapshot(module, TARGET), snapshot(module, "shared")
    assert before_target and all(torch.equal(before_target[k], after_target[k]) for k in before_target)
    assert all(torch.equal(v, module.gates.state_dict()[k]) for k, v in gates_before.items())
    assert any(not torch.equal(before_shared[k], after_shared[k]) for k in before_shared)


def test_labels_learned_per_task(corpus_dir):
    nlp = make_nlp({"@architectures": "spacy_dtn.DynamicTransferTagger.v1", "gated": ["word_lstm"]})
    ner = nlp.get_pipe("ner")
    nlp.initialize(lambda: examples(nlp, corpus_dir / "target.spacy", TARGET) + examples(nlp, corpus_dir / "source.spacy", SOURCE))
    assert ner.labels == ("Disease",)
    assert ner.source_labels == ("Chemical", "Disease")
    assert get_torch_module(ner.model).tasks == [SOURCE, TARGET]


def test_sequential_init_copies_the_source_weights(corpus_dir, tmp_path):
    source_nlp = make_nlp({"@architectures": "spacy_dtn.HierarchicalTagger.v1"})
    source_examples = examples(source_nlp, corpus_dir / "source.spacy", TARGET)
    source_nlp.initialize(lambda: source_examples)
    optimizer = source_nlp.create_optimizer()
    for _ in range(3):
        source_nlp.update(source_examples, sgd=optimizer)
    source_nlp.to_disk(tmp_path / "source")
    source_module = get_torch_module(source_nlp.get_pipe("ner").model)

    nlp = make_nlp({"@architectures": "spacy_dtn.DynamicTransferTagger.v1", "gated": list(SHARABLE_LAYERS[:4])})
    nlp.get_pipe("ner").initialize(
        lambda: examples(nlp, corpus_dir / "target.spacy", TARGET), nlp=nlp, source_model=str(tmp_path / "source")
    )
    module = get_torch_module(nlp.get_pipe("ner").model)
    loaded = shared_state(module)
    expected = {f"{layer}.{k}": v for layer in SHARABLE_LAYERS for k, v in source_module.layers[layer][TARGET].state_dict().items()}
    assert loaded.keys() == expected.keys()
    assert all(torch.equal(loaded[k], expected[k]) for k in expected)
    # Target-private copies keep their fresh initialisation.
    private = module.layers["word_lstm"][TARGET].state_dict()
    assert not torch.equal(private["lstm.weight_ih_l0"], source_module.layers["word_lstm"][TARGET].state_dict()["lstm.weight_ih_l0"])


def test_save_load_predicts_identically(corpus_dir, tmp_path):
    nlp, texts = trained_target_nlp(corpus_dir)
    expected = entities(nlp.pipe(texts))
    assert any(expected)
    nlp.to_disk(tmp_path / "model")
    loaded = spacy.load(tmp_path / "model")
    assert entities(loaded.pipe(texts)) == expected
    from_bytes = spacy.blank("en")
    config = {k: v for k, v in nlp.config["components"]["ner"].items() if k != "factory"}
    from_bytes.add_pipe("dtn_ner", name="ner", config=config)
    from_bytes.get_pipe("ner").from_bytes(nlp.get_pipe("ner").to_bytes())
    assert entities(from_bytes.pipe(texts)) == expected


def trained_gated_nlp(corpus_dir):
    """Both tasks, every lower layer gated: the state a DTN pipeline saves."""
    fix_random_seed(0)
    nlp = make_nlp({"@architectures": "spacy_dtn.BiLSTMTransferTagger.v1", "gated": list(SHARABLE_LAYERS[:4])})
    target = examples(nlp, corpus_dir / "target.spacy", TARGET)
    both = target + examples(nlp, corpus_dir / "source.spacy", SOURCE)
    nlp.initialize(lambda: both)
    optimizer = nlp.create_optimizer()
    for _ in range(3):
        nlp.update(both, sgd=optimizer)
    return nlp, [eg.reference.text for eg in target]


@pytest.mark.parametrize("trained", [trained_target_nlp, trained_gated_nlp], ids=["target-only", "gated"])
def test_loading_fills_a_tagger_built_without_weights(corpus_dir, trained):
    """Loading builds the torch module with shapes only and the saved tensors
    become its weights: no random copy is made, and nothing is left unfilled."""
    nlp, texts = trained(corpus_dir)
    expected = entities(nlp.pipe(texts))
    ner = nlp.get_pipe("ner")
    data, saved = ner.to_bytes(), get_torch_module(ner.model).state_dict()
    initialize_for_loading(ner.model)
    assert all(param.is_meta for param in get_torch_module(ner.model).parameters())
    ner.from_bytes(data)
    module = get_torch_module(ner.model)
    assert not any(tensor.is_meta for tensor in [*module.parameters(), *module.buffers()])
    assert module.state_dict().keys() == saved.keys()
    assert all(torch.equal(module.state_dict()[name], tensor) for name, tensor in saved.items())
    assert entities(nlp.pipe(texts)) == expected


def test_multiprocess_pipe_matches_single_process(corpus_dir, tmp_path):
    nlp, texts = trained_target_nlp(corpus_dir)
    texts = texts * 5
    single = entities(nlp.pipe(texts, batch_size=7))
    assert entities(nlp.pipe(texts, batch_size=7, n_process=2)) == single


WORDS = {"diabetes", "renal", "failure"}


@pytest.mark.parametrize("scheme", ["BILUO", "BIO"])
def test_entities_never_begin_or_end_on_whitespace(corpus_dir, monkeypatch, scheme):
    """A model that scores whitespace tokens as entity tokens (a corpus
    without them teaches it nothing there) and would rather carry an entity
    on still gives entities that begin and end on words, each with a
    confidence: they run across a line break where an editor wrapped the line
    ("renal\nfailure"), not across one that ends a line of a list, and none
    is found in a window of whitespace alone, which is read as it is."""
    nlp = spacy.blank("en")
    nlp.add_pipe("dtn_ner", name="ner", config={
        "model": {"@architectures": "spacy_dtn.HierarchicalTagger.v1", "settings": SMALL_SETTINGS},
        "tag_scheme": scheme,
    })
    target = examples(nlp, corpus_dir / "target.spacy", TARGET)
    nlp.initialize(lambda: target)
    ner = nlp.get_pipe("ner")
    predict = Model.predict  # a Model's attributes are slots: patch the class

    def edges_on_whitespace(model, X):
        scores, gate_sums = predict(model, X)
        names = ner.tag_names(TARGET)
        # Inside an entity a word scores higher than at its start, so a
        # line break inside "renal\nfailure" does not split it.
        on_word = torch.tensor([0.0] + [11.0 if name[0] in "IL" else 10.0 for name in names[1:]])
        emissions = torch.zeros_like(scores.emissions)
        for row, segment in enumerate(X[0]):
            for i, token in enumerate(segment):
                in_words = token.text in WORDS
                emissions[row, i, 1:] = 8.0 if token.is_space else 0.0 if in_words else -10.0
                emissions[row, i] += on_word if in_words else 0.0
        return scores._replace(emissions=emissions), gate_sums

    monkeypatch.setattr(Model, "predict", edges_on_whitespace)
    wrapped = "Patients were seen in the clinic this week with acute renal\nfailure and seen again in the clinic on the ward today ."
    doc = nlp(f"Patients with\n\ndiabetes\n\n{wrapped}\nrenal\ndiabetes\n")
    assert [e.text for e in doc.ents] == ["diabetes", "renal\nfailure", "renal", "diabetes"]
    assert not nlp("\n\n").ents
    # The decoded paths carry about half the weight or more (0.49-0.76 here):
    # a confidence of BIO's span without its trailing line break, a path the
    # decoder did not take, was 0.0003.
    assert all(0.4 < e._.confidence <= 1.0 for e in doc.ents)


def test_whitespace_rule_finds_each_segments_whitespace():
    """Segments of several docs and lengths in one batch: exactly the
    boundary tags of exactly the whitespace tokens are ruled out."""
    nlp = spacy.blank("en")
    texts = ["a\n\nb c\td  e", "x", "\n", "p q\nr"]
    segments = [nlp(text)[:] for text in texts][::-1]
    width, n_tags = max(len(s) for s in segments), 5
    mask = torch.tensor([[i < len(s) for i in range(width)] for s in segments])
    scores = CRFScores(torch.zeros(len(segments), width, n_tags), torch.zeros(n_tags),
                       torch.zeros(n_tags, n_tags), torch.zeros(n_tags), mask)
    tags = boundary_tags(make_tag_names(["A"], "BILUO"), "BILUO")
    (ruled_out, _), = [forbid_tags((scores, None), [(whitespace_flags(segments), tags)])]
    expected = torch.zeros(len(segments), width, n_tags, dtype=torch.bool)
    for row, segment in enumerate(segments):
        for i, token in enumerate(segment):
            expected[row, i] = torch.tensor(tags) & token.is_space
    assert expected.any()
    assert torch.equal(ruled_out.emissions == float("-inf"), expected)


def test_keep_existing_ents(corpus_dir):
    nlp, texts = trained_target_nlp(corpus_dir)
    ruler = nlp.add_pipe("entity_ruler", before="ner")
    ruler.add_patterns([{"label": "CUSTOM", "pattern": "diabetes"}])
    nlp.get_pipe("ner").keep_existing_ents = True
    doc = nlp("Patients with diabetes received therapy .")
    assert [(e.text, e.label_) for e in doc.ents] == [("diabetes", "CUSTOM")]
    nlp.get_pipe("ner").keep_existing_ents = False
    doc = nlp("Patients with diabetes received therapy .")
    assert [(e.text, e.label_) for e in doc.ents] == [("diabetes", "Disease")]


def test_freeze_shared_keeps_source_weights_fixed(corpus_dir, tmp_path):
    source_nlp = make_nlp({"@architectures": "spacy_dtn.HierarchicalTagger.v1"})
    source_nlp.initialize(lambda: examples(source_nlp, corpus_dir / "source.spacy", TARGET))
    source_nlp.to_disk(tmp_path / "source")
    nlp = spacy.blank("en")
    nlp.add_pipe("dtn_ner", name="ner", config={
        "freeze_shared": True,
        "model": {"@architectures": "spacy_dtn.DynamicTransferTagger.v1", "gated": ["word_lstm"], "shared": ["char_embed"], "settings": SMALL_SETTINGS},
    })
    target = examples(nlp, corpus_dir / "target.spacy", TARGET)
    nlp.get_pipe("ner").initialize(lambda: target, nlp=nlp, source_model=str(tmp_path / "source"))
    module = get_torch_module(nlp.get_pipe("ner").model)
    before_shared, before_target = snapshot(module, "shared"), snapshot(module, TARGET)
    optimizer = Adam(0.01)
    for _ in range(2):
        nlp.update(target, sgd=optimizer)
    after_shared, after_target = snapshot(module, "shared"), snapshot(module, TARGET)
    assert before_shared and all(torch.equal(before_shared[k], after_shared[k]) for k in before_shared)
    assert any(not torch.equal(before_target[k], after_target[k]) for k in before_target)


@pytest.mark.parametrize("gate", ["dynamic", "vector", "scalar"])
def test_gates_start_at_the_configured_bias(corpus_dir, gate):
    nlp = make_nlp({"@architectures": "spacy_dtn.DynamicTransferTagger.v1", "gated": list(SHARABLE_LAYERS[:4]),
                    "gate": gate, "gate_bias": 2.0})
    target = examples(nlp, corpus_dir / "target.spacy", TARGET)
    nlp.initialize(lambda: target + examples(nlp, corpus_dir / "source.spacy", SOURCE))
    gates = nlp.get_pipe("ner").gate_values(eg.predicted for eg in target)
    expected = float(torch.sigmoid(torch.tensor(2.0)))
    assert all(abs(gates[layer] - expected) < 1e-6 for layer in SHARABLE_LAYERS[:4])


def one_adam_step(corpus_dir, source_corpus: str, architecture: dict) -> dict:
    """Each tagger weight's change in one Adam step on a target and a source batch."""
    fix_random_seed(0)
    nlp = make_nlp({"@architectures": "spacy_dtn.BiLSTMTransferTagger.v1", **architecture})
    both = examples(nlp, corpus_dir / "target.spacy", TARGET) + examples(nlp, corpus_dir / source_corpus, SOURCE)
    nlp.initialize(lambda: both)
    module = get_torch_module(nlp.get_pipe("ner").model)
    before = {name: tensor.clone() for name, tensor in module.state_dict().items()}
    fix_random_seed(1)
    nlp.update(both, sgd=Adam(0.001))
    return {name: tensor - before[name] for name, tensor in module.state_dict().items()}


def assert_scaled_steps(plain: dict, scaled: dict, names: List[str]) -> None:
    """The named weights moved 10x as far (Adam's first step is the learning
    rate times the gradient's sign), every other weight exactly as far."""
    assert any(plain[name].abs().max() > 0 for name in names)
    for name, step in plain.items():
        if name in names:
            torch.testing.assert_close(scaled[name], 10 * step, rtol=1e-3, atol=1e-6)
        else:
            assert torch.equal(scaled[name], step), name


@pytest.mark.parametrize("gate,gated,source_corpus", [
    ("dynamic", SHARABLE_LAYERS[:4], "source.spacy"),
    ("scalar", SHARABLE_LAYERS[:4], "source.spacy"),
    # Same labels in both tasks, so the output layer (its CRF gate) is gated too.
    ("dynamic", SHARABLE_LAYERS, "target.spacy"),
])
def test_gates_step_at_their_own_learning_rate(corpus_dir, gate, gated, source_corpus):
    """gate_learn_rate_scale = 10 moves every gate parameter 10x as far as 1."""
    steps = {scale: one_adam_step(corpus_dir, source_corpus, {"gated": list(gated), "gate": gate,
                                                               "gate_learn_rate_scale": scale})
             for scale in (1.0, 10.0)}
    gates = [name for name in steps[1.0] if name.startswith(GATE_PARAMETERS)]
    assert {name.split(".")[1] for name in gates if name.startswith("gates.")} >= set(SHARABLE_LAYERS[:4])
    assert ("output" in gated) == any(name.startswith("crf_gate") for name in gates)
    assert_scaled_steps(steps[1.0], steps[10.0], gates)


def test_shared_copies_step_at_their_own_learning_rate(corpus_dir):
    """shared_learn_rate_scale = 10 moves the shared copies of gated and shared
    layers 10x as far as 1, and leaves the private copies and gates as they were."""
    architecture = {"gated": ["char_embed", "word_lstm"], "shared": ["word_embed"]}
    steps = {scale: one_adam_step(corpus_dir, "source.spacy", {**architecture, "shared_learn_rate_scale": scale,
                                                               "@architectures": "spacy_dtn.BiLSTMTransferTagger.v2"})
             for scale in (1.0, 10.0)}
    shared = [name for name in steps[1.0] if ".shared." in name]
    assert {name.split(".")[1] for name in shared} == {"char_embed", "word_lstm", "word_embed"}
    assert_scaled_steps(steps[1.0], steps[10.0], shared)


@pytest.mark.parametrize("setting", ["gate_learn_rate_scale", "shared_learn_rate_scale"])
def test_learn_rate_scales_must_be_positive(setting):
    with pytest.raises(ValueError, match=f"{setting} = 0.0 in the architecture"):
        make_nlp({"@architectures": "spacy_dtn.BiLSTMTransferTagger.v2", "gated": ["word_lstm"], setting: 0.0})


@pytest.mark.parametrize("scale", [-1.0, float("nan"), float("inf")])
def test_learn_rate_scales_must_be_finite(scale):
    with pytest.raises(ValueError, match=f"gate_learn_rate_scale = {scale} in the architecture"):
        check_learn_rate_scale(scale, "gate_learn_rate_scale")


def test_factory_default_is_the_tuned_dtn_config():
    nlp = spacy.blank("en")
    nlp.add_pipe("dtn_ner")
    shipped = spacy.util.load_config(CONFIGS / "dtn.cfg")["components"]["ner"]
    default = nlp.config["components"]["dtn_ner"]
    # The default model names TaggerSettings.v2, whose default word features the
    # shipped configs spell out under v1 (see test_saved_pipelines).
    assert default["model"]["settings"].pop("@misc") == "spacy_dtn.TaggerSettings.v2"
    assert shipped["model"]["settings"].pop("@misc") == "spacy_dtn.TaggerSettings.v1"
    default["model"]["settings"]["word_features"] = list(default["model"]["settings"]["word_features"])
    assert default["model"] == shipped["model"]
    assert {k: default[k] for k in shipped} == shipped


@pytest.mark.parametrize("config", ["dtn.cfg", "dtn_trf.cfg"])
def test_default_score_weights_name_every_layer_of_the_architecture(config):
    from spacy_dtn.search import scheme_overrides

    nlp = spacy.blank("en")
    nlp.add_pipe("dtn_ner")
    weights = nlp.config["training"]["score_weights"]
    assert all(f"gate_{layer}" in weights for layer in scheme_overrides(CONFIGS / config)["layers"])
