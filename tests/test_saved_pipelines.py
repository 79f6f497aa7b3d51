"""Pipelines saved by earlier versions load and predict as they did then."""
import json
from pathlib import Path

import pytest
import spacy

from conftest import entities, examples, make_nlp
from spacy_dtn.plan import TARGET

SAVED = Path(__file__).parent / "fixtures" / "saved_v0_1"


def test_pipeline_saved_before_the_redesign_predicts_identically():
    expected = json.loads((SAVED / "predictions.json").read_text(encoding="utf8"))
    nlp = spacy.load(SAVED / "pipeline")
    got = entities(nlp.pipe(expected["texts"]))
    assert got == [[tuple(e) for e in doc] for doc in expected["entities"]]
    gates = nlp.get_pipe("ner").gate_values(nlp.pipe(expected["texts"]))
    assert gates.keys() == expected["gates"].keys()
    for layer, value in expected["gates"].items():
        assert gates[layer] == pytest.approx(value, abs=1e-5), layer


def test_pipeline_saved_before_word_features_loads_hashing_the_word_alone(corpus_dir, tmp_path):
    """Pipelines trained before `word_features` existed have no such key in
    their settings (TaggerSettings.v1): they load hashing NORM alone, as they
    were trained, though dtn_ner's default model (v2) hashes spelling features."""
    nlp = make_nlp({"@architectures": "spacy_dtn.BiLSTMTransferTagger.v1", "gated": []})
    target = examples(nlp, corpus_dir / "target.spacy", TARGET)
    nlp.initialize(lambda: target)
    nlp.to_disk(tmp_path / "pipeline")
    config = tmp_path / "pipeline" / "config.cfg"
    lines = config.read_text(encoding="utf8").splitlines()
    config.write_text("\n".join(line for line in lines if not line.startswith("word_features")), encoding="utf8")
    loaded = spacy.load(tmp_path / "pipeline")
    for pipeline in (nlp, loaded):
        assert pipeline.get_pipe("ner").model.attrs["settings"].word_features == ("NORM",)
    texts = [eg.reference.text for eg in target]
    assert entities(loaded.pipe(texts)) == entities(nlp.pipe(texts))
    default = spacy.blank("en").add_pipe("dtn_ner")
    assert default.model.attrs["settings"].word_features == ("NORM", "PREFIX", "SUFFIX", "SHAPE")
