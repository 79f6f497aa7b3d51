"""Pipelines saved by earlier versions load and predict as they did then."""
import json
from pathlib import Path

import pytest
import spacy

from conftest import entities

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
