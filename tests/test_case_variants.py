"""Case variants of training examples (`spacy_dtn.case_variants.v1`) and the
reader that applies them (`spacy_dtn.TransferCorpus.v2`)."""
import random

import pytest
import spacy
from spacy.tokens import Doc, Span
from spacy.training import Example
from spacy.util import registry

from spacy_dtn.case_variants import recased
from spacy_dtn.plan import SOURCE, TARGET
from spacy_dtn.runs import config_digest, train_in_subprocess
from spacy_dtn.transfer_corpus import example_task

from conftest import CONFIGS


@pytest.fixture
def nlp():
    return spacy.blank("en")


def note(nlp) -> Example:
    words = ["History", "of", "Breast", "cancer", "in", "BRCA1", "carriers", "."]
    reference = Doc(nlp.vocab, words=words, spaces=[True] * 6 + [False, False])
    reference.set_ents([Span(reference, 2, 4, "Disease")], missing=[reference[6:8]], default="outside")
    reference.spans["nested"] = [Span(reference, 2, 4, "Disease", kb_id="D001943", span_id="s1"), Span(reference, 2, 3, "Body")]
    reference[5].ent_id_ = "gene"
    reference.user_data["note_id"] = "n1"
    return Example(nlp.make_doc(reference.text), reference)


def annotation(doc: Doc):
    return (
        [(t.ent_iob_, t.ent_type_) for t in doc],
        [t.ent_id_ for t in doc],
        {key: [(s.start, s.end, s.label_, s.kb_id_, s.id_) for s in group] for key, group in doc.spans.items()},
        doc.user_data,
    )


@pytest.mark.parametrize("change", [str.upper, str.lower])
def test_a_case_variant_keeps_tokens_entities_missing_tokens_span_groups_and_user_data(nlp, change):
    example = note(nlp)
    variant = recased(nlp, example, change)
    assert variant.reference.text == change(example.reference.text) != example.reference.text
    assert variant.predicted.text == variant.reference.text
    assert [t.text for t in variant.reference] == [change(t.text) for t in example.reference]
    assert annotation(variant.reference) == annotation(example.reference)
    assert variant.reference[6].ent_iob_ == ""  # missing stays missing, not "O"
    assert [e.text for e in variant.reference.ents] == [change("Breast cancer")]


def test_a_text_whose_case_change_alters_its_length_is_kept_as_it_is(nlp):
    reference = Doc(nlp.vocab, words=["Morbus", "Straße"], ents=["O", "B-Disease"])
    example = Example(nlp.make_doc(reference.text), reference)
    assert recased(nlp, example, str.upper) is example


def test_case_variants_change_the_shares_of_examples_they_are_given(nlp):
    augment = registry.augmenters.get("spacy_dtn.case_variants.v1")(upper=0.3, lower=0.2)
    example = note(nlp)
    random.seed(0)
    texts = [next(augment(nlp, example)).reference.text for _ in range(2000)]
    counts = {kind: sum(t == kind(example.reference.text) for t in texts) for kind in (str.upper, str.lower, str)}
    assert abs(counts[str.upper] / 2000 - 0.3) < 0.04
    assert abs(counts[str.lower] / 2000 - 0.2) < 0.04
    assert sum(counts.values()) == 2000


@pytest.mark.parametrize("upper,lower", [(-0.1, 0.0), (0.0, 1.5), (0.6, 0.6)])
def test_case_variants_reject_shares_that_are_no_shares(upper, lower):
    with pytest.raises(ValueError, match="add up to 1 or less"):
        registry.augmenters.get("spacy_dtn.case_variants.v1")(upper=upper, lower=lower)


def test_transfer_corpus_v2_augments_source_and_target_examples_and_v1_reads_them_as_they_are(corpus_dir, nlp):
    source, target = corpus_dir / "source.spacy", corpus_dir / "target.spacy"
    augment = registry.augmenters.get("spacy_dtn.case_variants.v1")(upper=1.0)
    v2 = registry.readers.get("spacy_dtn.TransferCorpus.v2")(source, target, 1.0, 0, 0, augment)
    v1 = registry.readers.get("spacy_dtn.TransferCorpus.v1")(source, target, 1.0, 0, 0)
    augmented, plain = list(v2(nlp)), list(v1(nlp))
    assert {example_task(eg) for eg in augmented} == {SOURCE, TARGET}
    assert all(eg.reference.text == eg.reference.text.upper() for eg in augmented)
    assert any(eg.reference.text != eg.reference.text.upper() for eg in plain)
    assert sorted(eg.reference.text.upper() for eg in plain) == sorted(eg.reference.text for eg in augmented)
    assert sum(len(eg.reference.ents) for eg in augmented) == sum(len(eg.reference.ents) for eg in plain) > 0


def as_before_case_variants(config: str) -> str:
    """A shipped config as it was before case variants: TransferCorpus.v1 without
    an augmenter, or spaCy's Corpus with `augmenter = null`."""
    start, end = config.index("# Case variants of the training notes"), config.index("[corpora.dev]")
    if "spacy_dtn.TransferCorpus.v2" in config:
        return (config[:start] + config[end:]).replace("spacy_dtn.TransferCorpus.v2", "spacy_dtn.TransferCorpus.v1")
    return config[:start].rstrip("\n") + "\naugmenter = null\n\n" + config[end:]


@pytest.mark.parametrize("config_name", ["dtn.cfg", "baseline.cfg"])
def test_shipped_configs_spell_case_variants_out_at_zero_with_the_digest_they_had(tmp_path, config_name):
    text = (CONFIGS / config_name).read_text(encoding="utf8")
    (tmp_path / "old.cfg").write_text(as_before_case_variants(text), encoding="utf8")
    (tmp_path / "on.cfg").write_text(text.replace("upper = 0.0", "upper = 0.1"), encoding="utf8")
    assert "case_variants" not in (tmp_path / "old.cfg").read_text(encoding="utf8")
    assert config_digest(tmp_path / "old.cfg") == config_digest(CONFIGS / config_name) != config_digest(tmp_path / "on.cfg")


def test_case_variants_at_zero_train_exactly_as_a_config_without_them(corpus_dir, source_model, tmp_path):
    """The shipped configs spell the augmenter out at 0: they must train the same
    weights as before (their benchmark records keep their config digest). dtn.cfg,
    whose reader changed from TransferCorpus.v1 to v2."""
    text = (CONFIGS / "dtn.cfg").read_text(encoding="utf8")
    (tmp_path / "old.cfg").write_text(as_before_case_variants(text), encoding="utf8")
    target = str(corpus_dir / "target.spacy")
    overrides = {
        "paths.train": target, "paths.dev": target, "paths.source_model": str(source_model),
        "training.max_steps": 20, "training.eval_frequency": 10,
    }
    weights = {}
    for name, config in [("old", tmp_path / "old.cfg"), ("new", CONFIGS / "dtn.cfg")]:
        train_in_subprocess(config, tmp_path / name, overrides)
        weights[name] = (tmp_path / name / "model-last" / "ner" / "model").read_bytes()
    assert weights["old"] == weights["new"]


@pytest.mark.parametrize("config_name", ["dtn.cfg", "baseline.cfg", "source.cfg", "scheme.cfg"])
def test_a_command_line_override_turns_case_variants_on(config_name, nlp):
    """What the project's case_upper / case_lower variables pass to `spacy train`."""
    overrides = {"corpora.train.augmenter.upper": 0.2, "corpora.train.augmenter.lower": 0.1}
    config = spacy.util.load_config(CONFIGS / config_name, overrides=overrides, interpolate=True)
    augmenter = registry.resolve({"a": config["corpora"]["train"]["augmenter"]})["a"]
    assert augmenter.keywords == {"upper": 0.2, "lower": 0.1}
