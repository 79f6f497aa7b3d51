"""Tiny hand-written corpora: a source with Chemical and Disease, a target with
Disease only (different label sets, as in BC5CDR -> NCBI-disease)."""
import shutil
from pathlib import Path
from typing import List, Optional, Tuple

import pytest
import spacy
import srsly
from spacy.tokens import Doc, DocBin
from spacy.training import Example
from thinc.api import Adam

from spacy_dtn.plan import GATE_SCORE_PREFIX, SOURCE, TARGET
from spacy_dtn.runs import train_in_subprocess
from spacy_dtn.transfer_corpus import mark_task

Sentence = List[Tuple[str, str]]  # (word, BIO tag)

TARGET_SENTENCES = [
    "Patients with B-Disease I-Disease received therapy .",
    "The B-Disease was diagnosed early .",
    "We studied B-Disease I-Disease I-Disease in children .",
    "No signs of B-Disease were found .",
    "Mutations cause B-Disease in some families .",
    "A case of B-Disease I-Disease is reported .",
    "Risk of B-Disease increased with age .",
    "She developed B-Disease after surgery .",
]
SOURCE_SENTENCES = [
    "B-Chemical induced B-Disease in rats .",
    "Treatment with B-Chemical reduced B-Disease I-Disease .",
    "B-Chemical I-Chemical caused severe B-Disease .",
    "Patients on B-Chemical developed B-Disease .",
    "The effect of B-Chemical on B-Disease was studied .",
    "High doses of B-Chemical led to B-Disease I-Disease .",
]
FILLERS = {
    "Disease": ["diabetes", "colon cancer", "renal failure", "hepatitis", "asthma",
                "breast cancer", "ataxia telangiectasia", "hypertension", "nephrotoxicity"],
    "Chemical": ["cisplatin", "lithium carbonate", "aspirin", "haloperidol", "cocaine", "valproic acid"],
}


def expand(template: str, offset: int) -> Sentence:
    """Fill each B-X/I-X slot run with an entity name of type X."""
    words: Sentence = []
    counter = offset
    tokens = template.split()
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.startswith("B-"):
            label = token[2:]
            j = i + 1
            while j < len(tokens) and tokens[j] == f"I-{label}":
                j += 1
            name = FILLERS[label][counter % len(FILLERS[label])].split()
            counter += 1
            words += [(w, ("B-" if k == 0 else "I-") + label) for k, w in enumerate(name)]
            i = j
        else:
            words.append((token, "O"))
            i += 1
    return words


def make_docs(nlp, templates: List[str], copies: int) -> List[Doc]:
    docs = []
    for c in range(copies):
        for t, template in enumerate(templates):
            sentence = expand(template, c + t)
            words = [w for w, _ in sentence]
            docs.append(Doc(nlp.vocab, words=words, ents=[tag for _, tag in sentence]))
    return docs


def write(docs: List[Doc], path: Path) -> Path:
    DocBin(docs=docs).to_disk(path)
    return path


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory) -> Path:
    nlp = spacy.blank("en")
    root = tmp_path_factory.mktemp("corpus")
    write(make_docs(nlp, TARGET_SENTENCES, 2), root / "target.spacy")
    write(make_docs(nlp, SOURCE_SENTENCES, 3), root / "source.spacy")
    return root


CONFIGS = Path(__file__).parent.parent / "configs"
STEPS = ["--training.max_steps", "120", "--training.eval_frequency", "60"]


def train_few_steps(config: str, output: Path, *overrides: str) -> Path:
    """`spacy train` of a shipped config for a few steps, through the CLI as a user runs
    it; `overrides` are `--key value` pairs (a later one wins). Returns model-last."""
    pairs = [*STEPS, *overrides]
    train_in_subprocess(CONFIGS / config, output, {key.lstrip("-"): value for key, value in zip(pairs[::2], pairs[1::2])})
    return output / "model-last"


@pytest.fixture(scope="session")
def source_model(corpus_dir, tmp_path_factory) -> Path:
    corpus = str(corpus_dir / "source.spacy")
    return train_few_steps("source.cfg", tmp_path_factory.mktemp("source"), "--paths.train", corpus, "--paths.dev", corpus)


# Small BiLSTM-CRF sizes: fast enough for unit tests, big enough to learn the toy corpora.
SMALL_SETTINGS = {
    "@misc": "spacy_dtn.TaggerSettings.v1", "char_rows": 60, "char_width": 8, "char_hidden": 8,
    "word_rows": 500, "word_width": 16, "word_hidden": 16, "dropout": 0.1,
}


def make_nlp(architecture: dict) -> spacy.Language:
    """A blank pipeline with one dtn_ner named "ner" of this architecture, small settings."""
    nlp = spacy.blank("en")
    nlp.add_pipe("dtn_ner", name="ner", config={"model": {**architecture, "settings": SMALL_SETTINGS}})
    return nlp


def examples(nlp, path: Path, task: str) -> List[Example]:
    return [mark_task(Example(nlp.make_doc(d.text), d), task) for d in DocBin().from_disk(path).get_docs(nlp.vocab)]


def fit(nlp, train: List[Example]) -> None:
    """Initialize on the examples and train on them until the toy corpora are tagged."""
    nlp.initialize(lambda: train)
    optimizer = Adam(0.01)
    for _ in range(30):
        nlp.update(train, sgd=optimizer)


def trained_target_nlp(corpus_dir: Path):
    """A DTN trained on the toy target alone until it predicts entities, and its texts."""
    nlp = make_nlp({"@architectures": "spacy_dtn.DynamicTransferTagger.v1", "gated": ["word_lstm"]})
    target = examples(nlp, corpus_dir / "target.spacy", TARGET)
    fit(nlp, target)
    return nlp, [eg.reference.text for eg in target]


def trained_two_task_nlp(corpus_dir: Path):
    """A two-task DTN (every embedding and BiLSTM gated) trained on the toy
    corpora until it predicts entities, and the target texts."""
    nlp = make_nlp({
        "@architectures": "spacy_dtn.BiLSTMTransferTagger.v1",
        "gated": ["char_embed", "char_lstm", "word_embed", "word_lstm"],
    })
    target = examples(nlp, corpus_dir / "target.spacy", TARGET)
    fit(nlp, target + examples(nlp, corpus_dir / "source.spacy", SOURCE))
    texts = [eg.reference.text for eg in target]
    texts += [" ".join(texts[i : i + 3]) for i in range(0, len(texts), 3)]  # windows of several lengths
    return nlp, texts


def entities(docs) -> List[List[Tuple[int, int, str]]]:
    return [[(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in docs]


def confidences(docs) -> List[List[Optional[float]]]:
    return [[e._.confidence for e in doc.ents] for doc in docs]


@pytest.fixture(scope="session")
def target_model(corpus_dir, tmp_path_factory) -> Path:
    """A small pipeline trained on the target corpus and saved (confidence, annotate, Spark)."""
    nlp, _ = trained_target_nlp(corpus_dir)
    path = tmp_path_factory.mktemp("target_model") / "model"
    nlp.to_disk(path)
    return path


SENTENCES = ["Patients with diabetes received therapy .", "She developed renal failure after surgery .",
             "No signs of asthma were found .", "A case of colon cancer is reported .",
             "Risk of hepatitis increased with age ."]


def note_texts(n):
    """Notes of 1-3 sentences, some with line breaks, made from the templates."""
    return [" ".join(SENTENCES[(i + k) % len(SENTENCES)] for k in range(1 + i % 3)).replace(" . ", " .\n", i % 2)
            for i in range(n)]


BILSTM_LAYERS = ["char_embed", "char_lstm", "word_embed", "word_lstm", "output"]
GATES = {"char_embed": 0.875, "char_lstm": 0.75, "word_embed": 0.625, "word_lstm": 0.25}  # exact in JSON


def saved_pipeline(folder: Path, config: str, labels: List[str], source_labels: List[str]) -> Path:
    """The files the report reads from a pipeline trained with a shipped config. As
    spaCy writes it, meta.json has a value for every gate score weight, gated or not."""
    folder.mkdir(parents=True)
    shutil.copy(CONFIGS / config, folder / "config.cfg")
    (folder / "ner").mkdir()
    srsly.write_json(folder / "ner" / "cfg", {"labels": labels, "source_labels": source_labels, "tag_scheme": "BILUO"})
    performance = {"ents_f": 0.7, **{GATE_SCORE_PREFIX + layer: GATES.get(layer, 0.0) for layer in BILSTM_LAYERS}}
    srsly.write_json(folder / "meta.json", {"performance": performance})
    return folder
