"""The dtn_ner component: routing of source/target updates, sequential transfer
from a source pipeline, serialization and multiprocessing."""
from pathlib import Path

import pytest
import spacy
import torch
from spacy.tokens import DocBin
from spacy.training import Example

from spacy_dtn.pytorch_tagger import SHARABLE_LAYERS, SOURCE, TARGET
from spacy_dtn.source_weights import shared_state
from spacy_dtn.tagger_model import get_torch_module
from spacy_dtn.transfer_corpus import mark_task

SMALL_SETTINGS = {
    "@misc": "spacy_dtn.TaggerSettings.v1", "char_rows": 60, "char_width": 8, "char_hidden": 8,
    "word_rows": 500, "word_width": 16, "word_hidden": 16, "dropout": 0.1,
}


def make_nlp(architecture: dict) -> spacy.Language:
    nlp = spacy.blank("en")
    nlp.add_pipe("dtn_ner", name="ner", config={"model": {**architecture, "settings": SMALL_SETTINGS}})
    return nlp


def examples(nlp, path: Path, task: str):
    return [mark_task(Example(nlp.make_doc(d.text), d), task) for d in DocBin().from_disk(path).get_docs(nlp.vocab)]


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
