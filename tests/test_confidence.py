"""Entity confidence: CRF span marginals against brute force, and the
component's scores in doc.spans and Span._.confidence."""
import json
import time

import pytest
import spacy
import torch
from spacy.tokens import Doc, DocBin, Span, SpanGroup

from spacy_dtn.calibration import CalibrationSet, expected_calibration_error, fit_temperature, golden_section, log_loss
from spacy_dtn.calibration import main as calibrate
from spacy_dtn.confidence import SCORES_ATTR, set_scored_spans
from spacy_dtn.pytorch_crf import TaggedSpans, span_marginals
from spacy_dtn.tag_scheme import entity_tags, extending_tag

from crf_cases import assert_matches_brute_force, brute_force_span_probs, constraints_for, random_crf, random_crf_cases


def pin(candidates, names, scheme):
    """TaggedSpans for (row, start, end, label) candidates."""
    index = {tag: i for i, tag in enumerate(names)}
    width = max(e - s for _, s, e, _ in candidates)
    tags = [[index[t] for t in entity_tags(label, e - s, scheme)] for _, s, e, label in candidates]
    forbidden = [extending_tag(label, scheme) for *_, label in candidates]
    return TaggedSpans(
        rows=torch.tensor([r for r, *_ in candidates]),
        starts=torch.tensor([s for _, s, _, _ in candidates]),
        tags=torch.tensor([row + [0] * (width - len(row)) for row in tags]),
        lengths=torch.tensor([e - s for _, s, e, _ in candidates]),
        next_not=torch.tensor([index[f] if f else -1 for f in forbidden]),
    )


@random_crf_cases(max_examples=40, max_length=4, max_scale=5.0)
def test_span_marginals_match_brute_force(scheme, length, seed, scale):
    names, constraints = constraints_for(scheme)
    emissions, start, transitions, end, mask = random_crf(3, length, len(names), seed)
    params = constraints.apply(start * scale, transitions * scale, end * scale, penalty=float("-inf"))
    emissions = emissions * scale
    expected, candidates = {}, []
    for row in range(3):
        n = int(mask[row].sum())
        for span, p in brute_force_span_probs(emissions[row], *params, n, names, scheme).items():
            expected[(row, *span)] = p
        # Every span and label, also the impossible ones (probability 0).
        candidates += [(row, s, e, label) for s in range(n) for e in range(s + 1, n + 1) for label in "AB"]
    got = span_marginals(emissions, *params, mask, pin(candidates, names, scheme))
    assert ((got >= 0) & (got <= 1)).all()
    for candidate, p in zip(candidates, got.tolist()):
        assert abs(p - expected.get(candidate, 0.0)) < 1e-9, candidate
    assert any(p > 0 for p in expected.values())


# Span._.confidence on hand-made groups


def test_confidence_finds_each_span_and_label():
    doc = Doc(spacy.blank("en").vocab, words=list("abcdefgh"))
    spans = [Span(doc, 5, 7, "B"), Span(doc, 0, 2, "A"), Span(doc, 0, 2, "B"), Span(doc, 0, 1, "A")]
    set_scored_spans(doc, "scored", spans, [0.1, 0.2, 0.3, 0.4])
    assert [(s.start, s.end, s.label_) for s in doc.spans["scored"]] == [(0, 1, "A"), (0, 2, "A"), (0, 2, "B"), (5, 7, "B")]
    assert [Span(doc, s, e, label)._.confidence for s, e, label in [(0, 2, "B"), (5, 7, "B"), (0, 1, "A"), (0, 2, "A")]] == \
        pytest.approx([0.3, 0.1, 0.4, 0.2])
    assert Span(doc, 0, 2, "C")._.confidence is None and Span(doc, 2, 3, "A")._.confidence is None
    # A group a user rebuilt in another order is still read.
    doc.spans["scored"] = SpanGroup(doc, name="scored", spans=[Span(doc, 5, 7, "B"), Span(doc, 0, 1, "A")],
                                    attrs={SCORES_ATTR: [0.9, 0.8]})
    assert Span(doc, 0, 1, "A")._.confidence == pytest.approx(0.8)


def test_confidence_of_every_entity_of_a_long_note_is_fast():
    """Reading all confidences of a note with 10,000 entities took about 46 s
    when each read scanned the whole group (1.85 s for the last 200, measured);
    a binary search takes well under a second."""
    doc = Doc(spacy.blank("en").vocab, words=["w"] * 20_000)
    spans = [Span(doc, i, i + 1, "A") for i in range(0, 20_000, 2)]
    set_scored_spans(doc, "scored", spans, [i / len(spans) for i in range(len(spans))])
    doc.ents = spans
    began = time.perf_counter()
    read = [ent._.confidence for ent in doc.ents]
    assert time.perf_counter() - began < 5.0
    assert read == pytest.approx([i / len(spans) for i in range(len(spans))])


def test_confidence_of_entities_no_group_holds_is_fast():
    """Entities of another component (an entity_ruler before dtn_ner, kept by
    keep_existing_ents) are in no scored group: each read scanned the whole
    group, 3.55 s for a note of 2,000 such and 2,000 DTN entities (measured);
    in a group marked as in span order a binary search's miss is final."""
    doc = Doc(spacy.blank("en").vocab, words=["w"] * 25_000)
    scored = [Span(doc, i, i + 1, "A") for i in range(0, 20_000, 2)]
    set_scored_spans(doc, "scored", scored, [0.5] * len(scored))
    others = [Span(doc, i, i + 1, "RULE") for i in range(20_000, 25_000)]
    for read in (doc, Doc(doc.vocab).from_bytes(doc.to_bytes())):  # the mark travels with the Doc
        began = time.perf_counter()
        assert all(Span(read, s.start, s.end, s.label_)._.confidence is None for s in others)
        assert time.perf_counter() - began < 5.0
    # A group changed since it was written (a span without a score) is scanned, and the span has none.
    doc.spans["scored"].append(Span(doc, 1, 2, "B"))
    assert Span(doc, 1, 2, "B")._.confidence is None and Span(doc, 2, 3, "A")._.confidence == pytest.approx(0.5)


# The component


TEXTS = ["Patients with diabetes received therapy .", "She developed renal failure after surgery .",
         "No signs of asthma were found ."]


@pytest.fixture(scope="module")
def trained(target_model):
    return spacy.load(target_model)


def test_entities_get_their_crf_probability(trained):
    ner = trained.get_pipe("ner")
    docs = list(trained.pipe(TEXTS))
    assert any(doc.ents for doc in docs)
    for doc in docs:
        group = doc.spans[ner.spans_key]
        assert [(s.start, s.end, s.label_) for s in group] == [(e.start, e.end, e.label_) for e in doc.ents]
        assert [e._.confidence for e in doc.ents] == pytest.approx(list(group.attrs["scores"]))
        assert all(0.0 <= e._.confidence <= 1.0 for e in doc.ents)
        assert_matches_brute_force(ner, doc)


def test_confidence_off_computes_nothing(trained, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("computed a confidence")

    monkeypatch.setattr("spacy_dtn.ner_component.entity_confidences", refuse)
    ner = trained.get_pipe("ner")
    with pytest.raises(AssertionError, match="computed a confidence"):
        list(trained.pipe(TEXTS))
    monkeypatch.setattr(ner, "confidence", False)
    docs = list(trained.pipe(TEXTS))
    assert any(doc.ents for doc in docs)
    assert all(ner.spans_key not in doc.spans and e._.confidence is None for doc in docs for e in doc.ents)


def test_temperature_flattens_and_survives_save(trained, tmp_path):
    """A temperature set in the config is saved with the pipeline; above 1 it
    pulls the confidences towards uncertainty without changing the entities."""
    def confidences(nlp):
        return [[(e.start, e.end, e._.confidence) for e in doc.ents] for doc in nlp.pipe(TEXTS)]

    trained.to_disk(tmp_path / "plain")
    plain = spacy.load(tmp_path / "plain")
    assert confidences(plain) == confidences(trained)
    hot = spacy.load(tmp_path / "plain", config={"components.ner.confidence_temperature": 3.0})
    hot.to_disk(tmp_path / "hot")
    reloaded = spacy.load(tmp_path / "hot")
    assert reloaded.get_pipe("ner").confidence_temperature == 3.0
    before, after = confidences(plain), confidences(reloaded)
    assert [[s[:2] for s in doc] for doc in before] == [[s[:2] for s in doc] for doc in after]
    pairs = [(b[2], a[2]) for doc_b, doc_a in zip(before, after) for b, a in zip(doc_b, doc_a) if b[2] > 0.5]
    assert pairs and all(a < b for b, a in pairs)


def test_scores_survive_docbin(trained, tmp_path):
    docs = list(trained.pipe(TEXTS))
    DocBin(docs=docs).to_disk(tmp_path / "docs.spacy")
    loaded = list(DocBin().from_disk(tmp_path / "docs.spacy").get_docs(trained.vocab))
    key = trained.get_pipe("ner").spans_key
    for doc, back in zip(docs, loaded):
        assert list(back.spans[key].attrs["scores"]) == list(doc.spans[key].attrs["scores"])
        assert [e._.confidence for e in back.ents] == [e._.confidence for e in doc.ents]
    assert any(e._.confidence is not None for doc in loaded for e in doc.ents)


def test_multiprocess_pipe_keeps_scores(trained):
    single = [[e._.confidence for e in doc.ents] for doc in trained.pipe(TEXTS * 3, batch_size=2)]
    multi = [[e._.confidence for e in doc.ents] for doc in trained.pipe(TEXTS * 3, batch_size=2, n_process=2)]
    # Workers run one torch thread each, so the floats may differ in the 6th digit.
    assert any(single) and [len(doc) for doc in multi] == [len(doc) for doc in single]
    assert sum(multi, []) == pytest.approx(sum(single, []), abs=1e-4)


# Calibration


def test_expected_calibration_error_by_hand():
    # Bin 9: confidence 0.95, 9 of 10 right (gap 0.05); bin 2: 0.25, 0 of 2 right (gap 0.25).
    outcomes = [(0.95, True)] * 9 + [(0.95, False)] + [(0.25, False)] * 2
    assert expected_calibration_error(outcomes) == pytest.approx((10 * 0.05 + 2 * 0.25) / 12)
    assert expected_calibration_error([(0.7, True), (0.7, False), (0.3, True), (0.3, False)]) == pytest.approx(0.2)
    assert expected_calibration_error([(1.0, True), (0.0, False)]) == 0.0


def test_golden_section_finds_the_minimum():
    assert golden_section(lambda x: (x - 1.3) ** 2, -3.0, 4.0, 1e-6) == pytest.approx(1.3, abs=1e-5)


def test_fitted_temperature_minimises_dev_log_loss(trained, corpus_dir):
    gold = list(DocBin().from_disk(corpus_dir / "target.spacy").get_docs(trained.vocab))
    for doc in gold[::3]:  # a third of the entities become wrong: the best temperature is not at a bound
        doc.ents = []
    dev = CalibrationSet(trained, trained.get_pipe("ner"), gold)
    fitted = fit_temperature(dev)
    loss = lambda t: log_loss(dev.outcomes(t))
    assert 0.2 < fitted < 5.0 and fitted != pytest.approx(1.0, abs=0.05)
    assert loss(fitted) <= min(loss(1.0), loss(fitted * 1.2), loss(fitted / 1.2))


def test_calibrate_command_saves_the_temperature(trained, corpus_dir, tmp_path):
    trained.to_disk(tmp_path / "model")
    corpus = str(corpus_dir / "target.spacy")
    args = [str(tmp_path / "model"), corpus, str(tmp_path / "calibrated"), "--test", corpus,
            "--metrics", str(tmp_path / "calibration.json"), "--plot", str(tmp_path / "reliability.png")]
    assert calibrate(args) == 0
    report = json.loads((tmp_path / "calibration.json").read_text())
    fitted = report["dev"]["after"]["temperature"]
    assert spacy.load(tmp_path / "calibrated").get_pipe("ner").confidence_temperature == pytest.approx(fitted)
    assert report["dev"]["before"]["temperature"] == 1.0 and report["test"]["after"]["entities"] > 0
    assert 0.0 <= report["test"]["after"]["ece"] <= 1.0
    assert (tmp_path / "reliability.png").read_bytes()[:4] == b"\x89PNG"


def test_entities_of_overlapping_windows_get_confidences(target_model):
    """A doc longer than max_segment_length is tagged in overlapping windows:
    each kept entity is scored in the window that keeps it."""
    nlp = spacy.load(target_model, config={"components.ner.max_segment_length": 8, "components.ner.window_margin": 2})
    doc = nlp(" ".join(TEXTS * 3))
    group = doc.spans[nlp.get_pipe("ner").spans_key]
    assert len(doc.ents) >= 3 and len(doc) > 8
    assert [(s.start, s.end, s.label_) for s in group] == [(e.start, e.end, e.label_) for e in doc.ents]
    assert all(0.0 <= e._.confidence <= 1.0 for e in doc.ents)
