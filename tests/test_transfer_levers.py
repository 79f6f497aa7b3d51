"""Transfer levers: the target's output rows for labels it shares with the
source start from the source's (by name, by a label map, or by the pairs the
source's predictions show); every copy of the word embedding reads the
pipeline's static vectors."""
from pathlib import Path
from typing import Dict, List, Sequence

import numpy
import pytest
import spacy
import torch
from spacy.tokens import Span
from spacy.training import Example
from spacy.training.initialize import init_nlp
from spacy.util import fix_random_seed, load_config
from spacy.vectors import Vectors
from thinc.api import Adam

from spacy_dtn.plan import SHARED, SOURCE, TARGET
from spacy_dtn.pytorch_tagger import OutputLayer
from spacy_dtn.tag_scheme import make_tag_names
from spacy_dtn.tagger_model import VECTORS_ATTR, _compute_features, get_torch_module, vector_rows
from conftest import SMALL_SETTINGS, entities, examples, fit, make_nlp

CONFIGS = Path(__file__).parent.parent / "configs"
DTN = {"@architectures": "spacy_dtn.BiLSTMTransferTagger.v1", "gated": ["char_embed", "char_lstm", "word_embed", "word_lstm"]}


@pytest.fixture(scope="module")
def source_path(corpus_dir, tmp_path_factory) -> Path:
    """A source pipeline (Chemical, Disease) whose output layer holds random values
    everywhere, CRF included, so that no copied entry matches a fresh one by chance."""
    nlp = make_nlp({"@architectures": "spacy_dtn.BiLSTMTransferTagger.v1"})
    nlp.initialize(lambda: examples(nlp, corpus_dir / "source.spacy", TARGET))
    with torch.no_grad():
        for param in source_output(nlp).parameters():
            param.copy_(torch.randn_like(param))
    path = tmp_path_factory.mktemp("levers") / "source"
    nlp.to_disk(path)
    return path


def source_output(nlp) -> OutputLayer:
    return get_torch_module(nlp.get_pipe("ner").model).layers["output"][TARGET]


def initialized_output(nlp, target: List[Example], source: Path, **settings) -> OutputLayer:
    """The target's output copy after a seeded sequential initialize on `target`."""
    fix_random_seed(0)
    nlp.get_pipe("ner").initialize(lambda: target, nlp=nlp, source_model=str(source), **settings)
    return get_torch_module(nlp.get_pipe("ner").model).layers["output"][TARGET]


def target_output(corpus_dir: Path, source: Path, labels: Sequence[str], **settings) -> OutputLayer:
    """The target's output copy after a seeded sequential initialize on the toy target."""
    nlp = make_nlp(DTN)
    return initialized_output(nlp, examples(nlp, corpus_dir / "target.spacy", TARGET), source, labels=list(labels), **settings)


def expected_rows(target_labels: List[str], source_labels: List[str], pairs: Dict[str, str]) -> Dict[int, int]:
    """Target tag index -> source tag index, spelt out by tag name."""
    target_tags = make_tag_names(target_labels, "BILUO")
    source_tags = make_tag_names(source_labels, "BILUO")
    rows = {0: 0}
    for target, source in pairs.items():
        for prefix in "BILU":
            rows[target_tags.index(f"{prefix}-{target}")] = source_tags.index(f"{prefix}-{source}")
    return rows


def assert_rows(copied: OutputLayer, fresh: OutputLayer, source: OutputLayer, rows: Dict[int, int]) -> None:
    """Rows in `rows` equal the source's, every other entry equals the fresh model's."""
    for name in ("linear.weight", "linear.bias", "start", "end", "transitions"):
        expected = dict(fresh.named_parameters())[name].detach().clone()
        origin = dict(source.named_parameters())[name].detach()
        for to, of in rows.items():
            if name == "transitions":
                for to2, of2 in rows.items():
                    expected[to, to2] = origin[of, of2]
            else:
                expected[to] = origin[of]
        assert torch.equal(dict(copied.named_parameters())[name], expected), name


@pytest.mark.parametrize("label_map,pairs", [
    ({}, {"Disease": "Disease"}),
    ({"Chemical": "Symptom"}, {"Disease": "Disease", "Symptom": "Chemical"}),
    ({"Disease": "Symptom"}, {"Symptom": "Disease"}),  # a mapped label is not also matched by name
], ids=["by-name", "label-map", "map-wins"])
def test_common_rows_start_from_the_source_and_the_rest_stays_fresh(corpus_dir, source_path, label_map, pairs):
    labels = ["Disease", "Symptom"]
    copied = target_output(corpus_dir, source_path, labels, transfer_output=True, label_map=label_map)
    fresh = target_output(corpus_dir, source_path, labels)
    assert not torch.equal(copied.linear.weight, fresh.linear.weight)
    source = source_output(spacy.load(source_path))
    assert_rows(copied, fresh, source, expected_rows(labels, ["Chemical", "Disease"], pairs))


@pytest.mark.parametrize("label_map,message", [
    ({"GENE": "Disease"}, r"source \['GENE'\] \(the source has \['Chemical', 'Disease'\]\), target none"),
    ({"Chemical": "Gene"}, r"source none .* target \['Gene'\] \(the target has \['Disease'\]\)"),
    ({"Chemical": "Disease", "Disease": "Disease"}, r"maps several source labels to \['Disease'\]"),
])
def test_label_map_naming_unknown_labels_is_an_error(corpus_dir, source_path, label_map, message):
    with pytest.raises(ValueError, match=r"label_map in \[initialize.components.ner\] .*" + message):
        target_output(corpus_dir, source_path, ["Disease"], transfer_output=True, label_map=label_map)


def test_label_map_without_a_source_pipeline_is_an_error(corpus_dir):
    nlp = make_nlp(DTN)
    with pytest.raises(ValueError, match="label_map is set in .* but source_model is not"):
        nlp.get_pipe("ner").initialize(lambda: examples(nlp, corpus_dir / "target.spacy", TARGET),
                                       nlp=nlp, label_map={"Chemical": "Disease"})


# ------------------------------------- labels paired by overlap (spacy_dtn/label_matching.py)

@pytest.fixture(scope="module")
def trained_source(corpus_dir, tmp_path_factory):
    """A source pipeline (Chemical, Disease) trained on the toy source corpus until it tags it."""
    fix_random_seed(0)
    nlp = make_nlp({"@architectures": "spacy_dtn.BiLSTMTransferTagger.v1"})
    fit(nlp, examples(nlp, corpus_dir / "source.spacy", TARGET))
    path = tmp_path_factory.mktemp("matching") / "source"
    nlp.to_disk(path)
    return path


def renamed_target(nlp, corpus_dir):
    """The toy target with its Disease entities called Illness."""
    target = examples(nlp, corpus_dir / "target.spacy", TARGET)
    for eg in target:
        eg.reference.ents = [Span(eg.reference, e.start, e.end, "Illness") for e in eg.reference.ents]
    return target


def output_after_initialize(corpus_dir, source, **settings):
    """The target's output copy after a seeded sequential initialize on the renamed target."""
    nlp = make_nlp(DTN)
    return initialized_output(nlp, renamed_target(nlp, corpus_dir), source, **settings)


def test_a_renamed_label_starts_from_the_source_rows_of_the_label_it_is(corpus_dir, trained_source):
    copied = output_after_initialize(corpus_dir, trained_source, transfer_output=True, map_labels_by_overlap=0.4)
    fresh = output_after_initialize(corpus_dir, trained_source)
    source = source_output(spacy.load(trained_source))
    assert_rows(copied, fresh, source, expected_rows(["Illness"], ["Chemical", "Disease"], {"Illness": "Disease"}))


def test_without_map_labels_by_overlap_a_renamed_label_starts_fresh(corpus_dir, trained_source):
    by_name = output_after_initialize(corpus_dir, trained_source, transfer_output=True)
    fresh = output_after_initialize(corpus_dir, trained_source)
    source = source_output(spacy.load(trained_source))
    assert_rows(by_name, fresh, source, {0: 0})  # only "O" is common


@pytest.mark.parametrize("config", ["dtn.cfg", "scheme.cfg", "dtn_trf.cfg"])
def test_sequential_configs_name_the_levers_where_spacy_users_look(config):
    section = load_config(CONFIGS / config)["initialize"]["components"]["ner"]
    assert section["label_map"] == {} and isinstance(section["transfer_output"], bool)


def test_config_label_map_reaches_initialize(corpus_dir, source_path):
    """Through spaCy's own init_nlp, as `spacy train` reads [initialize.components.ner]."""
    overrides = {f"components.ner.model.settings.{k}": v for k, v in SMALL_SETTINGS.items() if k != "@misc"}
    # The source (make_nlp's settings) hashes NORM alone; the transfer needs the target to match.
    overrides["components.ner.model.settings.word_features"] = ["NORM"]
    target = str(corpus_dir / "target.spacy")
    config = load_config(CONFIGS / "dtn.cfg", overrides={
        **overrides, "paths.train": target, "paths.dev": target, "paths.source_model": str(source_path),
        "initialize.components.ner.transfer_output": True,
        "initialize.components.ner.label_map": {"Chemical": "Disease"},
    })
    nlp = init_nlp(config)
    copied = get_torch_module(nlp.get_pipe("ner").model).layers["output"][TARGET]
    source = source_output(spacy.load(source_path))
    rows = expected_rows(["Disease"], ["Chemical", "Disease"], {"Disease": "Chemical"})
    assert all(torch.equal(copied.linear.weight[to], source.linear.weight[of]) for to, of in rows.items())


def test_a_source_hashing_other_word_features_is_refused(corpus_dir, source_path):
    """Table shapes fit whatever features are hashed: the transfer itself must say so."""
    overrides = {f"components.ner.model.settings.{k}": v for k, v in SMALL_SETTINGS.items() if k != "@misc"}
    target = str(corpus_dir / "target.spacy")
    config = load_config(CONFIGS / "dtn.cfg", overrides={
        **overrides, "paths.train": target, "paths.dev": target, "paths.source_model": str(source_path)})
    with pytest.raises(ValueError, match=r"hashes the word features \['NORM'\], this tagger \['NORM', 'PREFIX'"):
        init_nlp(config)


# ---------------------------------------------------------------- static vectors

VECTOR_WORDS = ["cancer", "diabetes", "cisplatin", "Patients", "with"]


def with_vectors(nlp, width: int = 6, seed: int = 0):
    """Give the pipeline a small static vectors table, as [initialize.vectors] would."""
    data = numpy.random.default_rng(seed).normal(size=(len(VECTOR_WORDS), width)).astype("float32")
    nlp.vocab.vectors = Vectors(data=data, keys=VECTOR_WORDS, strings=nlp.vocab.strings)
    return nlp


def vector_nlp(corpus_dir: Path, fine_tune: bool = False, architecture=DTN, vectors: bool = True):
    """A joint DTN (word_embed gated) initialized on the toy corpora."""
    nlp = spacy.blank("en")
    settings = {**SMALL_SETTINGS, "fine_tune_vectors": fine_tune}
    nlp.add_pipe("dtn_ner", name="ner", config={"model": {**architecture, "settings": settings}})
    if vectors:
        with_vectors(nlp)
    both = examples(nlp, corpus_dir / "target.spacy", TARGET) + examples(nlp, corpus_dir / "source.spacy", SOURCE)
    nlp.initialize(lambda: both)
    return nlp, both


def word_embeds(nlp):
    return list(get_torch_module(nlp.get_pipe("ner").model).layers["word_embed"].values())


def test_without_vectors_the_word_embedding_and_its_saved_form_are_as_before(corpus_dir):
    nlp, _ = vector_nlp(corpus_dir, vectors=False)
    model = nlp.get_pipe("ner").model
    assert len(word_embeds(nlp)) == 2
    assert all(set(dict(copy.named_parameters())) | set(dict(copy.named_buffers())) == {"table.weight"} for copy in word_embeds(nlp))
    assert all(VECTORS_ATTR not in node.attrs for node in model.walk())
    assert "vector_ids" not in _compute_features(model, [nlp("with cancer")[:]], False)[0]


def test_vector_rows_point_at_the_words_rows_and_zero_where_none(corpus_dir):
    nlp = with_vectors(spacy.blank("en"))
    segments = [nlp("Patients with colon cancer")[:], nlp("no cisplatin")[:]]
    expected = [[1 + VECTOR_WORDS.index("Patients"), 1 + VECTOR_WORDS.index("with"), 0, 1 + VECTOR_WORDS.index("cancer")],
                [0, 1 + VECTOR_WORDS.index("cisplatin"), 0, 0]]
    assert vector_rows(segments, nlp.vocab.vectors).tolist() == expected


def test_every_word_embed_copy_reads_the_frozen_vectors(corpus_dir):
    nlp, both = vector_nlp(corpus_dir)
    table = torch.from_numpy(nlp.vocab.vectors.data)
    copies = word_embeds(nlp)
    before = [copy.project.weight.detach().clone() for copy in copies]
    optimizer = Adam(0.01)
    for _ in range(2):
        nlp.update(both, sgd=optimizer)
    for copy, start in zip(copies, before):
        assert torch.equal(copy.vectors[1:], table) and not copy.vectors[0].any()
        assert "vectors" not in copy.state_dict() and not torch.equal(copy.project.weight, start)
    assert copies[0].vectors.data_ptr() == copies[1].vectors.data_ptr()
    # A word without a vector keeps its hashed rows alone.
    ids = torch.tensor([[3, 7]])
    assert torch.equal(copies[0](ids, torch.tensor([0])), copies[0](ids))
    assert not torch.equal(copies[0](ids, torch.tensor([2])), copies[0](ids))


@pytest.mark.parametrize("fine_tune", [False, True])
def test_pipeline_with_vectors_saves_loads_and_predicts_identically(corpus_dir, tmp_path, fine_tune):
    nlp, both = vector_nlp(corpus_dir, fine_tune=fine_tune)
    target = both[:16]  # the toy target examples come first
    optimizer = Adam(0.01)
    for _ in range(20):
        nlp.update(target, sgd=optimizer)
    copies = word_embeds(nlp)
    assert fine_tune == all(isinstance(copy.vectors, torch.nn.Parameter) for copy in copies)
    if fine_tune:  # each copy learns its own vectors
        assert not torch.equal(copies[0].vectors[1:], torch.from_numpy(nlp.vocab.vectors.data))
        assert copies[0].vectors.data_ptr() != copies[1].vectors.data_ptr()
    texts = [eg.reference.text for eg in both]
    nlp.to_disk(tmp_path / "model")
    loaded = spacy.load(tmp_path / "model")
    assert all(torch.equal(a.vectors, b.vectors) for a, b in zip(copies, word_embeds(loaded)))
    assert any(entities(nlp.pipe(texts)))
    assert entities(loaded.pipe(texts)) == entities(nlp.pipe(texts))


def test_sequential_init_takes_the_sources_vector_projection(corpus_dir, tmp_path):
    source = with_vectors(make_nlp({"@architectures": "spacy_dtn.BiLSTMTransferTagger.v1"}))
    source.initialize(lambda: examples(source, corpus_dir / "source.spacy", TARGET))
    source.to_disk(tmp_path / "source")
    nlp = with_vectors(make_nlp(DTN))
    nlp.get_pipe("ner").initialize(lambda: examples(nlp, corpus_dir / "target.spacy", TARGET), nlp=nlp,
                                   source_model=str(tmp_path / "source"))
    shared = get_torch_module(nlp.get_pipe("ner").model).layers["word_embed"][SHARED]
    assert torch.equal(shared.project.weight, word_embeds(source)[0].project.weight)
    plain = make_nlp(DTN)
    with pytest.raises(ValueError, match=r"`word_embed` layer .* same layer sizes and static vectors \(\[initialize.vectors\]\)"):
        plain.get_pipe("ner").initialize(lambda: examples(plain, corpus_dir / "target.spacy", TARGET), nlp=plain,
                                         source_model=str(tmp_path / "source"))
