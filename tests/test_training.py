"""`spacy train` through the CLI with each shipped config, then spacy.load."""
import subprocess
import sys
from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin
from spacy.training import Example

CONFIGS = Path(__file__).parent.parent / "configs"
STEPS = ["--training.max_steps", "120", "--training.eval_frequency", "60"]


def spacy_train(config: str, output: Path, *overrides: str) -> Path:
    cmd = [sys.executable, "-m", "spacy", "train", str(CONFIGS / config), "--output", str(output), *STEPS, *overrides]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return output / "model-last"


def train_f1(model_path: Path, corpus: Path) -> float:
    nlp = spacy.load(model_path)
    examples = [Example(nlp.make_doc(d.text), d) for d in DocBin().from_disk(corpus).get_docs(nlp.vocab)]
    return nlp.evaluate(examples)["ents_f"]


@pytest.fixture(scope="session")
def source_model(corpus_dir, tmp_path_factory) -> Path:
    corpus = str(corpus_dir / "source.spacy")
    return spacy_train("source.cfg", tmp_path_factory.mktemp("source"), "--paths.train", corpus, "--paths.dev", corpus)


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
    model = spacy_train(config, tmp_path, *paths, *overrides)
    assert train_f1(model, corpus_dir / "target.spacy") >= 0.95


def test_dtn_joint_learns_the_target_and_reports_gates(corpus_dir, tmp_path):
    target = str(corpus_dir / "target.spacy")
    model = spacy_train(
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
