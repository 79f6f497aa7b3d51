"""benchmarks/gate_sweep.py: a held gate mixes its copies at the held value alone."""
import torch

from benchmarks.gate_sweep import held_gate, sweep_table
from conftest import trained_two_task_nlp
from spacy_dtn.plan import TARGET
from spacy_dtn.tagger_model import get_torch_module


def test_a_gate_held_at_one_reads_the_shared_copy_alone(corpus_dir):
    nlp, texts = trained_two_task_nlp(corpus_dir)
    ner = nlp.get_pipe("ner")
    module = get_torch_module(ner.model)
    docs = [nlp.make_doc(text) for text in texts]
    learned = ner.predict(docs)
    assert any(learned)
    with held_gate(module.gates["word_lstm"], 1.0):
        held = ner.predict(docs)
        with torch.no_grad():
            for weight in module.layers["word_lstm"][TARGET].parameters():
                weight.add_(torch.randn_like(weight))
        assert ner.predict(docs) == held  # the private copy no longer counts
        assert ner.gate_values(docs)["word_lstm"] == 1.0
    assert ner.predict(docs) != held  # released, the gate mixes the changed private copy back in


def test_the_table_gives_each_layers_gate_and_its_dev_f1_spread():
    record = {"dev_f1": 0.73, "gates": {"char_lstm": 0.6, "word_lstm": 0.74},
              "dev_f1_with_gate_held_at": {"char_lstm": {"0.0": 0.72, "1.0": 0.735},
                                           "word_lstm": {"0.0": 0.0, "0.5": 0.72, "1.0": 0.74}}}
    header, _, row = sweep_table({"m": record})
    assert header.startswith("| model | dev F1 | char_lstm: gate / F1 spread | word_lstm")
    assert row == "| m | 73.00 | 0.60 / 1.5 | 0.74 / 74.0 |"
