import pytest

from spacy_dtn.tag_scheme import (
    allowed_transitions,
    bio_to_biluo,
    biluo_to_bio,
    boundary_tags,
    continuing_tags,
    make_tag_names,
    spans_from_tags,
)


def test_tag_names_are_stable_and_complete():
    assert make_tag_names(["B", "A"], "BIO") == ["O", "B-A", "I-A", "B-B", "I-B"]
    assert len(make_tag_names(["A"], "BILUO")) == 5
    with pytest.raises(ValueError, match="BIOES"):
        make_tag_names(["A"], "BIOES")


def test_boundary_tags_begin_or_end_an_entity():
    names = make_tag_names(["A"], "BILUO")  # O B-A I-A L-A U-A
    assert boundary_tags(names, "BILUO").tolist() == [False, True, False, True, True]
    assert boundary_tags(make_tag_names(["A"], "BIO"), "BIO").tolist() == [False, True, False]


def test_continuing_tags_carry_an_entity_on_from_the_token_before():
    names = make_tag_names(["A"], "BILUO")  # O B-A I-A L-A U-A
    assert continuing_tags(names, "BILUO").tolist() == [False, False, True, True, False]
    assert continuing_tags(make_tag_names(["A"], "BIO"), "BIO").tolist() == [False, False, True]


@pytest.mark.parametrize(
    "scheme,prev,nxt,ok",
    [
        ("BIO", "O", "I-A", False),
        ("BIO", "B-A", "I-A", True),
        ("BIO", "B-A", "I-B", False),
        ("BIO", "I-A", "B-A", True),
        ("BILUO", "B-A", "O", False),
        ("BILUO", "B-A", "L-A", True),
        ("BILUO", "I-A", "L-B", False),
        ("BILUO", "L-A", "U-B", True),
        ("BILUO", "U-A", "I-A", False),
    ],
)
def test_allowed_transitions(scheme, prev, nxt, ok):
    names = make_tag_names(["A", "B"], scheme)
    _, trans, _ = allowed_transitions(names, scheme)
    assert trans[names.index(prev), names.index(nxt)] == ok


def test_start_and_end_constraints():
    names = make_tag_names(["A"], "BILUO")
    start, _, end = allowed_transitions(names, "BILUO")
    assert [n for n, ok in zip(names, start) if ok] == ["O", "B-A", "U-A"]
    assert [n for n, ok in zip(names, end) if ok] == ["O", "L-A", "U-A"]


def test_conversions_round_trip_to_the_same_spans():
    biluo = ["U-A", "O", "B-B", "I-B", "L-B", "B-A", "L-A"]
    bio = biluo_to_bio(biluo)
    assert bio == ["B-A", "O", "B-B", "I-B", "I-B", "B-A", "I-A"]
    assert bio_to_biluo(bio) == biluo
    assert spans_from_tags(biluo, "BILUO") == spans_from_tags(bio, "BIO") == [(0, 1, "A"), (2, 5, "B"), (5, 7, "A")]
