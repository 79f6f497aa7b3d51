"""The fast paths predict what the plain ones do: numpy featurisation gives the
arrays of a per-token loop, windows sorted by length give the entities of
docs tagged one at a time, and the int8 serving copy (quantize = true) agrees
with the float model while training and saving keep the float weights."""
from typing import Dict, List

import numpy
import pytest
import spacy
import torch
from spacy.tokens import Span
from spacy.training import Example
from thinc.api import Adam, NumpyOps, fix_random_seed
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from benchmarks.speed import summary
from spacy_dtn.reading import read_window
from spacy_dtn.plan import SOURCE, TARGET
from spacy_dtn.pytorch_serving import FormCache
from spacy_dtn.pytorch_tagger import BiLSTM, HashEmbedding, PaddedRows, gate_sums, pack
from spacy_dtn.tagger_model import SERVING_COPY, TaggerSettings, featurize, get_torch_module, prediction_cache
from conftest import entities, examples, make_nlp, trained_two_task_nlp

SETTINGS = TaggerSettings(char_rows=60, word_rows=500, max_word_length=6)
SPELLING = TaggerSettings(char_rows=60, word_rows=500, max_word_length=6, word_features=("NORM", "PREFIX", "SUFFIX", "SHAPE"))


def per_token_features(segments: List[Span], settings: TaggerSettings) -> Dict[str, numpy.ndarray]:
    """The featurisation written as a loop over tokens: what `featurize` must equal."""
    lengths = numpy.array([len(s) for s in segments], dtype="int64")
    width = int(lengths.max(initial=1))
    ops = NumpyOps()

    def rows(token) -> List[int]:
        """The word's hashes, then one per spelling feature, each with its own seed."""
        ids = [getattr(token, name.lower()) for name in settings.word_features]
        hashes = [ops.hash(numpy.array([key], dtype="uint64"), seed)[0] for seed, key in enumerate(ids)]
        return [int(h) % (settings.word_rows - 1) + 1 for h in [*hashes[0][: settings.word_hashes], *(h[0] for h in hashes[1:])]]

    n_rows = settings.word_hashes + len(settings.word_features) - 1
    word_ids = numpy.zeros((len(segments), width, n_rows), dtype="int64")
    token_unique = numpy.zeros((len(segments), width), dtype="int64")
    forms: Dict[str, int] = {}
    for b, segment in enumerate(segments):
        for t, token in enumerate(segment):
            word_ids[b, t] = rows(token)
            text = token.text
            if len(text) > settings.max_word_length:
                half = settings.max_word_length // 2
                text = text[:half] + text[len(text) - (settings.max_word_length - half) :]
            token_unique[b, t] = forms.setdefault(text, len(forms))
    chars = numpy.zeros((len(forms), max([len(f) for f in forms], default=1)), dtype="int64")
    for u, form in enumerate(forms):
        chars[u, : len(form)] = [ord(c) % (settings.char_rows - 1) + 1 for c in form]
    return {
        "word_ids": word_ids,
        "lengths": lengths,
        "chars": chars,
        "char_lengths": numpy.array([len(f) for f in forms], dtype="int64"),
        "token_unique": token_unique,
    }


@pytest.mark.parametrize("settings", [SETTINGS, SPELLING], ids=["norm", "spelling"])
def test_featurize_equals_the_per_token_loop(settings: TaggerSettings):
    nlp = spacy.blank("en")
    docs = [
        nlp("Germline BRCA1 mutations cause familial breast cancer ; BRCA1 again ."),
        # Different words that clip to the same form, repeated words, non-ASCII and emoji.
        nlp("abcXYZdef abcQQQdef naïve Café 😀 α-β-γ cancer cancer"),
        nlp("x"),
    ]
    segments = [docs[0][:], docs[1][2:7], docs[1][:], docs[0][3:5], docs[2][:]]
    expected = per_token_features(segments, settings)
    found = featurize(segments, settings)
    assert found.keys() == {*expected, "distinct_word_ids", "token_word", "form_keys"}
    for name, array in expected.items():
        assert found[name].dtype == array.dtype, name
        numpy.testing.assert_array_equal(found[name], array, err_msg=name)
    assert len(found["chars"]) < sum(len(s) for s in segments)  # forms are shared, not per token
    # Each distinct word once, and every token pointing at its own rows.
    distinct = found["distinct_word_ids"]
    assert len({tuple(row) for row in distinct}) == len(distinct) < sum(len(s) for s in segments)
    real = numpy.arange(found["word_ids"].shape[1]) < found["lengths"][:, None]
    numpy.testing.assert_array_equal(distinct[found["token_word"][real]], found["word_ids"][real])
    # A form's cache key is the ORTH of a token with that form.
    keys = found["form_keys"].view("uint64")
    assert len(keys) == len(found["chars"])
    tokens = [t for s in segments for t in s]
    for token, form in zip(tokens, found["token_unique"][real]):
        key_token = next(t for t in tokens if t.orth == keys[form])
        assert found["chars"][form].tolist() == found["chars"][found["token_unique"][real][tokens.index(key_token)]].tolist()


def test_spelling_features_share_rows_between_words():
    """Words that end alike share their SUFFIX row; a string that is both a
    word and a prefix ("x") takes a different row for each."""
    doc = spacy.blank("en")("nephropathy retinopathy x")
    rows = featurize([doc[:]], SPELLING)["word_ids"][0]
    assert SETTINGS.word_features == ("NORM",) and rows.shape == (3, SPELLING.word_hashes + 3)
    suffix = SPELLING.word_hashes + 1
    assert rows[0, suffix] == rows[1, suffix] and rows[0, 0] != rows[1, 0]
    assert rows[2, 0] != rows[2, SPELLING.word_hashes]  # NORM "x" vs PREFIX "x"


@pytest.mark.parametrize("features", [(), ("NORM", "NORM"), ("NORM", "LEMMA")])
def test_word_features_are_checked(features):
    with pytest.raises(ValueError, match="word_features"):
        TaggerSettings(word_features=features)


@pytest.fixture(scope="module")
def dtn(corpus_dir):
    return trained_two_task_nlp(corpus_dir)


def test_a_batch_predicts_what_docs_one_at_a_time_do(dtn):
    nlp, texts = dtn
    alone = entities(nlp(text) for text in texts)
    assert any(alone)
    assert entities(nlp.pipe(texts, batch_size=64)) == alone


def count_char_summaries(module, monkeypatch) -> List[int]:
    """Rows the character BiLSTM runs on, per call."""
    counts: List[int] = []
    run = type(module)._run

    def counted(self, layer, task, gates, *args, **kwargs):
        if layer == "char_lstm":
            counts.append(int(args[0].batch_sizes[0]))  # packed forms: the first step holds every one
        return run(self, layer, task, gates, *args, **kwargs)

    monkeypatch.setattr(type(module), "_run", counted)
    return counts


def test_a_stream_runs_each_word_form_once(dtn, monkeypatch):
    nlp, texts = dtn
    stream = texts * 3
    alone = entities(nlp(text) for text in stream)  # __call__: no cache
    counts = count_char_summaries(get_torch_module(nlp.get_pipe("ner").model), monkeypatch)
    assert entities(nlp.pipe(stream, batch_size=4)) == alone
    forms = {token.text for doc in nlp.tokenizer.pipe(stream) for token in read_window(doc[:]).span}  # no layout
    assert sum(counts) == len(forms) < sum(len(doc) for doc in nlp.tokenizer.pipe(stream))
    assert get_torch_module(nlp.get_pipe("ner").model).form_cache is None  # the stream's cache ends with it


def test_gates_are_read_without_the_cache_of_an_unfinished_stream(dtn):
    """nlp.evaluate zips examples with an nlp.pipe generator, which then stays
    suspended inside its cache when the scorer reads the gates."""
    nlp, texts = dtn
    ner = nlp.get_pipe("ner")
    expected = ner.gate_values([nlp(text) for text in texts])
    assert all(expected[layer] > 0.01 for layer in ("char_embed", "char_lstm", "word_embed", "word_lstm"))
    stream = nlp.pipe(texts)
    predicted = [doc for _, doc in zip(texts, stream)]  # stops before the generator's end
    assert get_torch_module(ner.model).form_cache is not None
    assert ner.gate_values(predicted) == pytest.approx(expected)
    scores = nlp.evaluate([Example(nlp.make_doc(text), doc) for text, doc in zip(texts, predicted)])
    assert scores["gate_word_lstm"] == pytest.approx(expected["word_lstm"])
    stream.close()


def test_gated_bilstm_mixes_real_positions_as_each_sequence_alone_would(dtn):
    """Both copies of a gated BiLSTM and its gate run on one packing; the mix
    at every real position is what each sequence gives alone, padding is zero,
    and the gate read-out counts real positions only (prediction: training
    reads padded rows, test_bilstm_trains_on_padded_rows_as_on_the_packing)."""
    module = get_torch_module(dtn[0].get_pipe("ner").model).eval()
    torch.manual_seed(0)
    lengths = torch.tensor([5, 2, 3])
    X = torch.randn(3, 6, module.layers["word_lstm"][TARGET].lstm.input_size)
    gates: Dict[str, torch.Tensor] = {}
    with torch.no_grad():
        mixed = module._run_sequence("word_lstm", TARGET, gates, X, lengths)
        for b, length in enumerate(lengths.tolist()):
            shared, private = (copy.lstm(X[b : b + 1, :length])[0][0] for copy in module.copies("word_lstm", TARGET))
            expected, _ = module.gates["word_lstm"](shared, private)
            torch.testing.assert_close(mixed[b, :length], expected)
            assert not mixed[b, length:].any()
    assert gates["word_lstm"].shape == (int(lengths.sum()), mixed.shape[-1])
    mask = torch.arange(X.shape[1]) < lengths.unsqueeze(1)
    total, count = gate_sums(gates, None, mask)["word_lstm"]
    assert count == int(lengths.sum()) * mixed.shape[-1]
    assert total == pytest.approx(float(gates["word_lstm"].sum()))


@pytest.mark.parametrize("final_states", [False, True])
def test_bilstm_trains_on_padded_rows_as_on_the_packing(final_states: bool):
    """Training reads padded rows (each direction a one-way LSTM, the backward
    one over each row reversed within its length): the states at real
    positions, the summaries and every weight's gradient are the packed ones."""
    torch.manual_seed(0)
    lstm = BiLSTM(7, 5).train()
    X, lengths = torch.randn(4, 6, 7), torch.tensor([6, 1, 3, 5])
    real = (torch.arange(6) < lengths.unsqueeze(1)).unsqueeze(2)
    weighting = torch.randn(4, 10) if final_states else torch.randn(4, 6, 10)

    def run(rows):
        lstm.zero_grad()
        out = lstm(rows, final_states=final_states)
        if isinstance(out, PackedSequence):
            out = pad_packed_sequence(out, batch_first=True, total_length=6)[0]
        out = out if final_states else out * real  # what the CRF's mask does to padded positions
        (out * weighting).sum().backward()
        return out.detach(), {name: p.grad.clone() for name, p in lstm.named_parameters()}

    packed, packed_grads = run(pack(X, lengths))
    padded, padded_grads = run(PaddedRows(X, lengths))
    torch.testing.assert_close(padded, packed, atol=1e-5, rtol=1e-4)
    for name, grad in packed_grads.items():
        torch.testing.assert_close(padded_grads[name], grad, atol=1e-5, rtol=1e-4, msg=name)


def test_training_drops_the_form_cache(dtn):
    nlp, texts = dtn
    ner = nlp.get_pipe("ner")
    module = get_torch_module(ner.model)
    with prediction_cache(ner.model):
        list(nlp.pipe(texts[:3]))
        assert module.form_cache is not None
        ner.model.begin_update(([nlp.make_doc(texts[0])[:]], TARGET))
        assert module.form_cache is None
    module.eval()


def test_form_cache_computes_only_new_forms_and_starts_over_when_full():
    computed: List[List[int]] = []

    def compute(indices):
        computed.append(indices.tolist())
        return keys[indices].float().unsqueeze(1) * 10

    cache = FormCache(max_forms=4)
    keys = torch.tensor([5, 7, 9])
    assert cache.lookup(keys, compute).squeeze(1).tolist() == [50.0, 70.0, 90.0]
    keys = torch.tensor([9, 11, 5])
    assert cache.lookup(keys, compute).squeeze(1).tolist() == [90.0, 110.0, 50.0]
    assert computed == [[0, 1, 2], [1]]
    keys = torch.tensor([13, 15])  # 6 forms > 4: start over with this batch's
    assert cache.lookup(keys, compute).squeeze(1).tolist() == [130.0, 150.0]
    assert computed[-1] == [0, 1] and set(cache.rows) == {13, 15}
    keys = torch.arange(10)  # larger than the cache: computed, nothing kept
    assert cache.lookup(keys, compute).shape == (10, 1) and cache.rows == {}


@pytest.fixture(scope="module")
def saved(dtn, tmp_path_factory):
    path = tmp_path_factory.mktemp("dtn") / "model"
    dtn[0].to_disk(path)
    return path


def load_quantized(path):
    return spacy.load(path, config={"components": {"ner": {"quantize": True}}})


def test_quantized_copy_predicts_like_the_float_model(dtn, saved):
    _, texts = dtn
    plain, quantized = spacy.load(saved), load_quantized(saved)
    ner = quantized.get_pipe("ner")
    shim = ner.model.get_ref("torch").shims[0]
    assert getattr(shim, SERVING_COPY, None) is not None
    assert not hasattr(plain.get_pipe("ner").model.get_ref("torch").shims[0], SERVING_COPY)
    expected, found = entities(plain.pipe(texts)), entities(quantized.pipe(texts))
    assert any(expected)
    agree = sum(e == f for e, f in zip(expected, found))
    assert agree >= 0.9 * len(texts), (agree, len(texts))
    gates, quantized_gates = plain.get_pipe("ner").gate_values(plain.pipe(texts)), ner.gate_values(quantized.pipe(texts))
    assert quantized_gates == pytest.approx(gates, abs=0.01)


def test_quantize_keeps_the_float_weights_for_saving_and_training(dtn, saved):
    nlp, texts = dtn
    quantized = load_quantized(saved)
    ner = quantized.get_pipe("ner")
    assert type(get_torch_module(ner.model).layers["word_lstm"]["target"].lstm).__name__ == "LSTM"
    assert ner.to_bytes() == spacy.load(saved).get_pipe("ner").to_bytes()
    # A training pass drops the int8 copy: from then on the float model predicts.
    ner.model.begin_update(([quantized.make_doc(texts[0])[:]], TARGET))
    assert not hasattr(ner.model.get_ref("torch").shims[0], SERVING_COPY)
    assert entities(quantized.pipe(texts)) == entities(spacy.load(saved).pipe(texts))


def test_side_by_side_takes_medians_and_ratios_within_rounds():
    rounds = [
        {"dtn": {"cpu_per_s": 30.0, "quantize": True}, "ner": {"cpu_per_s": 20.0}, "trf": {"cpu_per_s": 2.0}},
        {"dtn": {"cpu_per_s": 12.0, "quantize": True}, "ner": {"cpu_per_s": 10.0}},  # a busier round
        {"dtn": {"cpu_per_s": 26.0, "quantize": True}, "ner": {"cpu_per_s": 20.0}},
    ]
    dtn, ner, trf = summary(rounds, "ner")
    assert dtn == {"system": "dtn", "cpu_per_s": 26.0, "cpu_per_s_vs_ner": 1.3, "quantize": True}
    assert ner["cpu_per_s_vs_ner"] == 1.0
    assert trf == {"system": "trf", "cpu_per_s": 2.0, "cpu_per_s_vs_ner": 0.1}  # measured once


def test_sparse_word_tables_step_as_their_dense_gradients_would(corpus_dir, tmp_path):
    nlp = make_nlp({"@architectures": "spacy_dtn.BiLSTMTransferTagger.v1", "gated": ["word_embed", "word_lstm"]})
    train = examples(nlp, corpus_dir / "target.spacy", TARGET) + examples(nlp, corpus_dir / "source.spacy", SOURCE)
    nlp.initialize(lambda: train)
    nlp.to_disk(tmp_path / "start")
    sparse, dense = spacy.load(tmp_path / "start"), spacy.load(tmp_path / "start")
    tables = [m for m in get_torch_module(dense.get_pipe("ner").model).modules() if isinstance(m, HashEmbedding)]
    assert len(tables) == 2  # the shared word table and the target-private one
    for module in tables:
        module.table.sparse = False  # torch's dense gradient, as thinc's own step takes it
    start = {k: v.clone() for k, v in get_torch_module(sparse.get_pipe("ner").model).state_dict().items()}
    optimizers = {id(sparse): Adam(0.01), id(dense): Adam(0.01)}
    for step in range(3):  # target, source, target: a source batch leaves the private table without a gradient
        batch = train[: len(train) // 2] if step % 2 else train[len(train) // 2 :]
        for nlp_ in (sparse, dense):
            fix_random_seed(step)
            nlp_.update(batch, sgd=optimizers[id(nlp_)])
    after = [get_torch_module(p.get_pipe("ner").model).state_dict() for p in (sparse, dense)]
    moved = [k for k in start if "word_embed" in k and not torch.equal(start[k], after[0][k])]
    assert moved
    for key in start:  # the sums of repeated rows run in another order: ~3e-6 apart, against ~0.03 moved
        torch.testing.assert_close(after[0][key], after[1][key], rtol=0, atol=1e-4)


def test_bfloat16_is_refused_where_it_cannot_apply(saved):
    message = r"bfloat16 = true in \[components.ner\], but its model has no transformer"
    with pytest.raises(ValueError, match=message):
        spacy.load(saved, config={"components": {"ner": {"bfloat16": True}}})
    with pytest.raises(ValueError, match=message):
        spacy.blank("en").add_pipe("dtn_ner", name="ner", config={"bfloat16": True})
    with pytest.raises(ValueError, match=r"quantize = true and bfloat16 = true in \[components.ner\]"):
        spacy.load(saved, config={"components": {"ner": {"bfloat16": True, "quantize": True}}})


def test_bfloat16_autocast_returns_float32_close_to_the_float_module_and_warns_without_native_support(monkeypatch):
    from spacy_dtn import pytorch_serving

    module = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.LayerNorm(8))
    X = torch.randn(4, 8)
    monkeypatch.setattr(pytorch_serving, "cpu_has_bfloat16", lambda: True)
    served = pytorch_serving.bfloat16_autocast(module)
    expected, found = module(X), served(X)
    assert found.dtype == torch.float32 and not torch.equal(found, expected)
    torch.testing.assert_close(found, expected, atol=0.05, rtol=0.05)
    assert served.module is module  # the float weights, not a copy
    monkeypatch.setattr(pytorch_serving, "cpu_has_bfloat16", lambda: False)
    with pytest.warns(UserWarning, match="no native bfloat16"):
        pytorch_serving.bfloat16_autocast(module)
