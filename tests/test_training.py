"""`spacy train` through the CLI with each shipped config, then spacy.load."""
from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin
from spacy.training import Example

from spacy_dtn.plan import TARGET
from spacy_dtn.transfer_corpus import TransferCorpus, example_task

from conftest import train_few_steps


def train_f1(model_path: Path, corpus: Path) -> float:
    nlp = spacy.load(model_path)
    examples = [Example(nlp.make_doc(d.text), d) for d in DocBin().from_disk(corpus).get_docs(nlp.vocab)]
    return nlp.evaluate(examples)["ents_f"]


def test_source_config_learns_the_source(corpus_dir, source_model):
    assert train_f1(source_model, corpus_dir / "source.spacy") >= 0.95


@pytest.mark.parametrize(
    "config,overrides",
    [
        ("baseline.cfg", []),
        ("scheme.cfg", ["--components.ner.model.shared", '["char_embed","word_lstm"]']),
        ("dtn.cfg", []),
    ],
    ids=["baseline", "scheme-sequential", "dtn-sequential"],
)
def test_config_learns_the_target(corpus_dir, source_model, tmp_path, config, overrides):
    target = str(corpus_dir / "target.spacy")
    paths = ["--paths.train", target, "--paths.dev", target]
    if config != "baseline.cfg":
        paths += ["--paths.source_model", str(source_model)]
    model = train_few_steps(config, tmp_path, *paths, *overrides)
    assert train_f1(model, corpus_dir / "target.spacy") >= 0.95


def test_dtn_joint_learns_the_target_and_reports_gates(corpus_dir, tmp_path):
    target = str(corpus_dir / "target.spacy")
    model = train_few_steps(
        "dtn.cfg", tmp_path,
        "--paths.train", target, "--paths.dev", target,
        "--paths.source_train", str(corpus_dir / "source.spacy"),
        "--corpora.train.source_per_target", "1.0", "--training.max_epochs", "-1",
    )
    assert train_f1(model, corpus_dir / "target.spacy") >= 0.95
    nlp = spacy.load(model)
    performance = nlp.meta["performance"]
    for layer in ["char_embed", "char_lstm", "word_embed", "word_lstm"]:
        assert 0.0 < performance[f"gate_{layer}"] < 1.0
    assert performance["gate_output"] == 0.0  # different label sets: private output


def test_transfer_corpus_reads_its_files_once_and_makes_fresh_examples(corpus_dir, monkeypatch):
    """Joint training (`max_epochs = -1`) calls the reader once per epoch; the
    .spacy files are read on the first call only, and every call still makes
    new Examples (fresh predicted docs) over the same reference docs."""
    reads = []
    from_disk = DocBin.from_disk
    monkeypatch.setattr(DocBin, "from_disk", lambda self, path: reads.append(Path(path).name) or from_disk(self, path))
    corpus = TransferCorpus(corpus_dir / "source.spacy", corpus_dir / "target.spacy", 1.0, 0, 0)
    nlp = spacy.blank("en")
    first, second = list(corpus(nlp)), list(corpus(nlp))
    assert sorted(reads) == ["source.spacy", "target.spacy"]

    def targets(examples):
        return {id(eg.reference): eg.reference.text for eg in examples if example_task(eg) == TARGET}

    assert targets(first) == targets(second) and len(targets(first)) == len(list(corpus.target(nlp)))
    assert not {id(eg.predicted) for eg in first} & {id(eg.predicted) for eg in second}
    list(corpus(spacy.blank("en")))  # another pipeline (another vocab): read again
    assert sorted(reads) == ["source.spacy", "source.spacy", "target.spacy", "target.spacy"]
