"""Pairing differently named labels from the source's predictions on the target's
training texts (spacy_dtn/label_matching.py): the scores and the pairing rule (the
output rows it lets sequential transfer start from the source's: test_transfer_levers.py)."""
from typing import List, Tuple

import pytest
import spacy
from spacy.tokens import Doc, Span

from spacy_dtn.label_matching import labels_by_overlap, match_by_overlap, overlap_f1, unmatched_labels

Ents = List[Tuple[int, int, str]]


def doc_with(ents: Ents) -> Doc:
    doc = Doc(spacy.blank("en").vocab, words="a b c d e f g h".split())
    doc.ents = [Span(doc, start, end, label) for start, end, label in ents]
    return doc


def test_a_prediction_counts_for_the_gold_entity_it_overlaps_most():
    gold = doc_with([(0, 2, "Gene"), (3, 6, "Chem")])
    # X overlaps Gene by 1 token and Chem by 2 (Chem wins); Y touches Gene; Z touches nothing
    predicted = doc_with([(1, 5, "X"), (0, 1, "Y"), (7, 8, "Z")])
    f1 = overlap_f1([predicted.ents], [gold.ents])
    assert f1 == {("X", "Chem"): 2 * 1 / (1 + 1), ("Y", "Gene"): 2 * 1 / (1 + 1)}
    twice = doc_with([(1, 5, "X"), (6, 7, "X")])  # two X predictions, one hit: F1 2*1/(2+1)
    assert overlap_f1([twice.ents], [gold.ents]) == {("X", "Chem"): pytest.approx(2 / 3)}


@pytest.mark.parametrize("f1,free_source,free_target,min_f1,expected", [
    ({("GENE", "Gene"): 0.85, ("GENE", "Complex"): 0.24}, {"GENE"}, {"Gene", "Complex"}, 0.4, {"GENE": "Gene"}),
    ({("GENE", "Gene"): 0.35, ("GENE", "Complex"): 0.24}, {"GENE"}, {"Gene", "Complex"}, 0.4, {}),
    # Gene's best source is Protein (paired by name elsewhere): Chemical does not get it
    ({("Chemical", "Gene"): 0.5, ("Protein", "Gene"): 0.8}, {"Chemical"}, {"Gene"}, 0.4, {}),
    # Chemical's best target, Disease, is already paired (by name): nothing for Chemical
    ({("Disease", "Disease"): 0.7, ("Chemical", "Disease"): 0.1}, {"Chemical"}, set(), 0.05, {}),
    ({("Chemical", "Simple"): 0.47, ("Chemical", "Gene"): 0.15, ("Disease", "Gene"): 0.04},
     {"Chemical", "Disease"}, {"Simple", "Gene"}, 0.4, {"Chemical": "Simple"}),
], ids=["best-pair", "under-min-f1", "not-mutual", "target-taken", "one-of-two"])
def test_labels_pair_when_each_is_the_others_best_and_the_f1_is_high_enough(f1, free_source, free_target, min_f1, expected):
    assert match_by_overlap(f1, free_source, free_target, min_f1) == expected


def test_labels_paired_by_name_or_by_the_label_map_are_not_free():
    free = unmatched_labels(["Chemical", "Disease", "GENE"], ["Disease", "Gene", "Drug"], {"Chemical": "Drug"})
    assert free == ({"GENE"}, {"Gene"})
    # a label the map names is not also paired by name
    assert unmatched_labels(["Disease"], ["Disease", "Symptom"], {"Disease": "Symptom"}) == (set(), {"Disease"})


@pytest.mark.parametrize("min_f1", [0, 1.5, -0.2])
def test_a_min_f1_outside_0_to_1_is_an_error_naming_the_setting(min_f1):
    with pytest.raises(ValueError, match=r"map_labels_by_overlap in \[here\] is .*above 0, at most 1"):
        labels_by_overlap(None, [], ["Gene"], {}, min_f1, "[here]")
