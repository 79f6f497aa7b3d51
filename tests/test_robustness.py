"""Robustness of a trained dtn_ner pipeline: odd and long text, saved-model
safety (corrupt files, other versions, malicious pickles) and multiprocessing.

One small pipeline is trained per module (`trained`) and saved once (`saved`);
tests that need to change a saved model work on a copy.
"""
import io
import shutil
from pathlib import Path
from typing import List, Tuple

import pytest
import spacy
import srsly
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from thinc.shims.pytorch import default_deserialize_torch_model

import spacy_dtn
from spacy_dtn import saved_format, tagger_model
from spacy_dtn.ner_component import PREDICT_BATCH_TOKENS
from spacy_dtn.saved_format import SavedModelError
from conftest import entities, trained_target_nlp

LONG_WORDS = ["Patients", "with", "colon", "cancer", "received", "therapy", "and"]


@pytest.fixture(scope="module")
def trained(corpus_dir):
    nlp, texts = trained_target_nlp(corpus_dir)
    assert any(entities(nlp.pipe(texts)))  # it has learned something to predict
    return nlp, texts


@pytest.fixture(scope="module")
def saved(trained, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("saved") / "model"
    trained[0].to_disk(path)
    return path


def check_spans(spans: List[Tuple[int, int]], n_tokens: int) -> None:
    """Valid, sorted and non-overlapping token spans of a doc of n_tokens."""
    for start, end in spans:
        assert 0 <= start < end <= n_tokens, (start, end, n_tokens)
    assert spans == sorted(spans)
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:])), spans


def check_doc(nlp, doc) -> None:
    check_spans([(e.start, e.end) for e in doc.ents], len(doc))
    (predicted,) = nlp.get_pipe("ner").predict([doc])  # before doc.ents could reject anything
    check_spans([(s, e) for s, e, _, _ in predicted], len(doc))
    assert all(label == "Disease" and 0.0 <= confidence <= 1.0 for _, _, label, confidence in predicted)


# ---------------------------------------------------------------- text


ODD_TEXTS = {
    "empty": ("", 0),
    "whitespace": ("  \n\t  \n", 1),
    "one token": ("diabetes", 1),
    "emoji": ("Patients with 😷 diabetes 👩🏽‍⚕️ received therapy 🎉", None),
    "cjk": ("患者は糖尿病と診断された。病人患有糖尿病。당뇨병 환자", None),
    "arabic": ("تم تشخيص المريض بمرض السكري .", None),
    "hebrew": ("המטופל אובחן עם סוכרת .", None),
    "mixed direction": ("Patients with \u202eدیابت\u202c and diabetes \u200f.", None),
    "control characters": ("Patients\x00 with\x07 colon\u200bcancer\r received\r\ntherapy\x1b .", None),
    "nul only": ("\x00\x00\x00", None),
    "5000-char token": ("x" * 5000, 1),
    "5000-char token in a sentence": ("Patients with " + "é" * 5000 + " received therapy .", 6),
}


@pytest.mark.parametrize("text,n_tokens", ODD_TEXTS.values(), ids=list(ODD_TEXTS))
def test_odd_text_gives_valid_entities(trained, text, n_tokens):
    nlp, _ = trained
    doc = nlp(text)
    assert doc.text == text
    if n_tokens is not None:
        assert len(doc) == n_tokens
    check_doc(nlp, doc)


def test_odd_texts_in_one_batch_match_one_by_one(trained):
    nlp, texts = trained
    batch = [text for text, _ in ODD_TEXTS.values()] + texts[:4]
    one_by_one = [entities([nlp(t)])[0] for t in batch]
    assert entities(nlp.pipe(batch, batch_size=5)) == one_by_one
    assert any(one_by_one[-4:])


@settings(max_examples=50, deadline=None)
@given(text=st.text())
def test_random_unicode_gives_valid_entities(trained, text):
    nlp, _ = trained
    doc = nlp(text)
    assert doc.text == text
    check_doc(nlp, doc)


def test_50k_token_document_is_tagged_in_windows(trained, monkeypatch):
    nlp, _ = trained
    ner = nlp.get_pipe("ner")
    text = " ".join(LONG_WORDS[i % len(LONG_WORDS)] for i in range(50_000))
    doc = nlp.make_doc(text)
    assert len(doc) == 50_000 and not doc.has_annotation("SENT_START")

    windows = [(w.span.start, w.span.end) for _, w in ner.windows([doc])]
    kept = [(w.keep_start, w.keep_end) for _, w in ner.windows([doc])]
    length, margin = ner.max_segment_length, ner.window_margin
    assert windows[0] == (0, length) and windows[-1][1] == 50_000
    assert all(e - s <= length for s, e in windows)
    # Neighbours overlap by two margins; the kept parts tile the document.
    assert all(b[0] == a[1] - 2 * margin for a, b in zip(windows, windows[1:]))
    assert kept[0][0] == 0 and kept[-1][1] == 50_000
    assert all(a[1] == b[0] for a, b in zip(kept, kept[1:]))

    passes: List[List[Tuple[int, int]]] = []
    featurize = tagger_model.featurize

    def spy(segments, *args, **kwargs):
        passes.append([(s.start, s.end) for s in segments])
        return featurize(segments, *args, **kwargs)

    monkeypatch.setattr(tagger_model, "featurize", spy)
    doc = nlp(doc)
    fed = [window for batch in passes for window in batch]
    assert fed == windows  # every window once, each of at most max_segment_length
    assert len(passes) > 1
    for batch in passes:  # memory is bounded by the pass, not by the document
        assert len(batch) * max(e - s for s, e in batch) <= PREDICT_BATCH_TOKENS
    check_spans([(e.start, e.end) for e in doc.ents], len(doc))
    assert {e.text for e in doc.ents} >= {"colon cancer"}


def test_sentences_longer_than_a_window_are_cut(trained):
    nlp, _ = trained
    ner = nlp.get_pipe("ner")
    doc = nlp.make_doc(" ".join(["word"] * 700) + " . short sentence .")
    for token in doc:
        token.is_sent_start = token.i == 0 or doc[token.i - 1].text == "."
    windows = [(w.span.start, w.span.end) for _, w in ner.windows([doc])]
    assert windows == [(0, 256), (192, 448), (384, 640), (576, 701), (701, 704)]


# ---------------------------------------------------------------- saved models


def corrupt_copy(saved: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "model"
    shutil.copytree(saved, copy)
    return copy


def test_saved_cfg_has_the_package_version(saved):
    cfg = srsly.read_json(saved / "ner" / "cfg")
    assert cfg == {
        "labels": ["Disease"], "source_labels": [], "tag_scheme": "BILUO",
        "spacy_dtn_version": spacy_dtn.__version__,
    }


def truncate_model(path: Path) -> None:
    data = (path / "ner" / "model").read_bytes()
    (path / "ner" / "model").write_bytes(data[: len(data) // 2])


def flip_bytes(path: Path) -> None:
    data = bytearray((path / "ner" / "model").read_bytes())
    for i in range(len(data) // 3, len(data), 101):
        data[i] ^= 0x5A
    (path / "ner" / "model").write_bytes(bytes(data))


BROKEN = {
    "truncated model": (truncate_model, r"ner/model: .*truncated or corrupt"),
    "empty model": (lambda p: (p / "ner" / "model").write_bytes(b""), r"ner/model: .*truncated or corrupt"),
    "corrupt model": (flip_bytes, r"Could not load the weights of 'ner' from .*ner/model"),
    "missing model": (lambda p: (p / "ner" / "model").unlink(), r"ner/model is missing: the pipeline was not saved completely"),
    "garbage cfg": (lambda p: (p / "ner" / "cfg").write_text("{labels: [Disease"), r"ner/cfg is not valid JSON"),
    "cfg not an object": (lambda p: (p / "ner" / "cfg").write_text("[1, 2]"), r"ner/cfg is not a dtn_ner cfg .*found a list"),
    "missing cfg": (lambda p: (p / "ner" / "cfg").unlink(), r"ner/cfg is missing"),
    "missing component folder": (lambda p: shutil.rmtree(p / "ner"), r"folder .*ner of component 'ner' is missing"),
}


@pytest.mark.parametrize("damage,message", BROKEN.values(), ids=list(BROKEN))
def test_broken_saved_model_fails_loudly_on_load(saved, tmp_path, damage, message):
    path = corrupt_copy(saved, tmp_path)
    damage(path)
    with pytest.raises(SavedModelError, match=message) as info:
        spacy.load(path)
    assert str(path) in str(info.value)


def edit_cfg(path: Path, **changes) -> None:
    cfg = srsly.read_json(path / "ner" / "cfg")
    for key, value in changes.items():
        if value is None:
            del cfg[key]
        else:
            cfg[key] = value
    srsly.write_json(path / "ner" / "cfg", cfg)


@pytest.mark.parametrize("version", ["0.2.0", "1.1.0", "0.0.9", "banana"])
def test_other_major_minor_version_is_refused_naming_both(saved, tmp_path, version):
    path = corrupt_copy(saved, tmp_path)
    edit_cfg(path, spacy_dtn_version=version)
    with pytest.raises(SavedModelError) as info:
        spacy.load(path)
    message = str(info.value)
    assert f"saved by spacy-dtn {version}, but this is spacy-dtn {spacy_dtn.__version__}" in message
    assert str(path / "ner" / "cfg") in message


def test_a_later_version_refuses_a_model_saved_by_this_one(saved, tmp_path, monkeypatch):
    monkeypatch.setattr(saved_format, "__version__", "0.2.0")
    for path, version in ((saved, spacy_dtn.__version__), (corrupt_copy(saved, tmp_path), None)):
        if version is None:
            edit_cfg(path, spacy_dtn_version=None)  # unstamped: 0.1.0
        with pytest.raises(SavedModelError, match=rf"saved by spacy-dtn {version or '0.1.0'}, but this is spacy-dtn 0\.2\.0"):
            spacy.load(path)


@pytest.mark.parametrize("version", ["0.1.99", None], ids=["other patch", "unstamped 0.1.0"])
def test_compatible_version_loads_and_predicts_the_same(trained, saved, tmp_path, version):
    # 0.1.0 saved the cfg without a version: that exact layout is read as 0.1.0.
    nlp, texts = trained
    path = corrupt_copy(saved, tmp_path)
    edit_cfg(path, spacy_dtn_version=version)
    loaded = spacy.load(path)
    assert entities(loaded.pipe(texts)) == entities(nlp.pipe(texts))
    assert loaded.get_pipe("ner").cfg["spacy_dtn_version"] == spacy_dtn.__version__  # re-saved stamped


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"spacy_dtn_version": None, "crf": 1}, r"has no 'spacy_dtn_version' and keys \['crf', 'labels'.*This is spacy-dtn 0\.1"),
        ({"crf_layout": 2}, r"layout spacy-dtn 0\.1\.\d+ does not know .*unknown keys \['crf_layout'\]"),
        ({"source_labels": None}, r"missing keys \['source_labels'\]"),
        ({"labels": "Disease"}, r"wrong types \['labels'\]"),
        ({"spacy_dtn_version": None, "labels": None}, r"has no 'spacy_dtn_version' and keys \['source_labels', 'tag_scheme'\]"),
        ({"tag_scheme": "IOBES"}, r"tag_scheme one of \['BIO', 'BILUO'\] \(found 'IOBES'\)"),
    ],
    ids=["no version, unknown key", "unknown key", "missing key", "wrong type", "no version, missing key", "unknown scheme"],
)
def test_unknown_cfg_layout_is_refused(saved, tmp_path, changes, message):
    path = corrupt_copy(saved, tmp_path)
    edit_cfg(path, **changes)
    with pytest.raises(SavedModelError, match=message):
        spacy.load(path)


def test_corrupt_component_bytes_fail_loudly(trained):
    nlp, _ = trained
    data = nlp.get_pipe("ner").to_bytes()
    fresh = spacy.blank("en")
    config = {k: v for k, v in nlp.config["components"]["ner"].items() if k != "factory"}
    ner = fresh.add_pipe("dtn_ner", name="ner", config=config)
    with pytest.raises(SavedModelError, match=r"the bytes of component 'ner'.*truncated or corrupt"):
        ner.from_bytes(data[: len(data) // 2])


class Payload:
    """Unpickling this opens (creates) the marker file: a stand-in for any code."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def malicious_state(marker: Path) -> bytes:
    buffer = io.BytesIO()
    torch.save({"layers.output.target.linear.weight": Payload(marker)}, buffer)
    return buffer.getvalue()


def replace_torch_state(model_bytes: bytes, state: bytes) -> bytes:
    msg = srsly.msgpack_loads(model_bytes)
    (node,) = [i for i, shims in enumerate(msg["shims"]) if shims]
    shim = srsly.msgpack_loads(msg["shims"][node][0])
    shim["state"] = state
    msg["shims"][node][0] = srsly.msgpack_dumps(shim)
    return srsly.msgpack_dumps(msg)


@pytest.mark.filterwarnings("ignore:Environment variable TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")
def test_loading_never_unpickles_objects(saved, tmp_path, monkeypatch):
    # Make torch.load behave as before torch 2.6 wherever weights_only is not
    # passed explicitly, as on older torch versions this package supports.
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    # The payload is live: Thinc's default deserializer would run it...
    control = tmp_path / "control-marker"
    with pytest.raises(Exception):
        default_deserialize_torch_model(torch.nn.Linear(1, 1), malicious_state(control), torch.device("cpu"))
    assert control.exists()
    # ...but the component's loader refuses it, and the marker never appears.
    marker = tmp_path / "marker"
    path = corrupt_copy(saved, tmp_path)
    model_file = path / "ner" / "model"
    model_file.write_bytes(replace_torch_state(model_file.read_bytes(), malicious_state(marker)))
    with pytest.raises(SavedModelError) as info:
        spacy.load(path)
    assert not marker.exists()
    message = str(info.value)
    assert message.startswith(f"Refused to load the weights of 'ner' from {model_file}:")
    assert "io.open" in message and "weights_only=False" not in message


def test_the_torch_wrapper_loads_weights_only():
    model = tagger_model.build_bilstm_transfer_tagger(tagger_model.TaggerSettings())
    shim = model.get_ref("torch").shims[0]
    assert shim._deserialize_model is tagger_model.deserialize_torch_state


# ---------------------------------------------------------------- multiprocessing


def test_pipe_with_two_processes_matches_one_on_5000_docs(trained):
    nlp, texts = trained
    docs = [f"{texts[i % len(texts)]} Case {i} ." for i in range(5000)]
    single = entities(nlp.pipe(docs, batch_size=250))
    assert sum(len(ents) for ents in single) >= 2500
    assert entities(nlp.pipe(docs, batch_size=250, n_process=2)) == single
