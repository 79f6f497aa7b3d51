"""Which source label a differently named target label is, read from the target's training data.

Sequential transfer starts the target's output rows of a label from the source's rows of the
same label (source_weights.common_tag_rows). Corpora often name one entity type differently
(BC2GM's `GENE` is BioNLP13PC's `Gene_or_gene_product`), and a user who does not know to set
`label_map` would lose that row transfer. So the source pipeline tags the target's *training*
texts (never dev or test) and each (source label, target label) pair is scored by the entity
F1 the source label, renamed, would reach on that target label (a prediction counts for the
gold entity it overlaps most). A source label left without a partner is paired with a target
label left without one when each is the other's best and the F1 is at least `min_f1`: the
share of a prediction's hits alone would not do, as BC5CDR's `Chemical` hits BioNLP13PC's
many `Gene_or_gene_product` entities about as often as its `Simple_chemical` ones. Labels
matched by name and the user's `label_map` are never changed; the map only decides where
output rows start, and training moves them from there.
"""
from collections import Counter
from typing import Dict, Iterable, Mapping, Optional, Sequence, Set, Tuple

from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc, Span
from spacy.training import Example

LabelPair = Tuple[str, str]  # (source label, target label)


def overlap_f1(predicted: Iterable[Sequence[Span]], gold: Iterable[Sequence[Span]]) -> Dict[LabelPair, float]:
    """Per (predicted label, gold label): 2 * hits / (predicted + gold entities), where a
    prediction hits the label of the gold entity it shares the most tokens with."""
    hits: Counter = Counter()
    predicted_count: Counter = Counter()
    gold_count: Counter = Counter()
    for predicted_ents, gold_ents in zip(predicted, gold):
        gold_count.update(ent.label_ for ent in gold_ents)
        for ent in predicted_ents:
            predicted_count[ent.label_] += 1
            best = max(gold_ents, key=lambda g: _shared_tokens(ent, g), default=None)
            if best is not None and _shared_tokens(ent, best) > 0:
                hits[(ent.label_, best.label_)] += 1
    return {(s, t): 2 * n / (predicted_count[s] + gold_count[t]) for (s, t), n in hits.items()}


def _shared_tokens(a: Span, b: Span) -> int:
    return min(a.end, b.end) - max(a.start, b.start)


def paired_labels(
    source_labels: Sequence[str], target_labels: Sequence[str], label_map: Mapping[str, str]
) -> Dict[str, str]:
    """Target -> source label for the pairs a same name or `label_map` makes; a label
    that `label_map` names is not also paired by name."""
    named = set(label_map) | set(label_map.values())
    pairs = {label: label for label in source_labels if label in target_labels and label not in named}
    pairs.update({target: source for source, target in label_map.items()})
    return pairs


def unmatched_labels(
    source_labels: Sequence[str], target_labels: Sequence[str], label_map: Mapping[str, str]
) -> Tuple[Set[str], Set[str]]:
    """The source and target labels that paired_labels leaves without a partner."""
    pairs = paired_labels(source_labels, target_labels, label_map)
    return set(source_labels) - set(pairs.values()), set(target_labels) - set(pairs)


def match_by_overlap(
    f1: Mapping[LabelPair, float], free_source: Iterable[str], free_target: Iterable[str], min_f1: float
) -> Dict[str, str]:
    """Source -> target label for free labels that are each other's best F1 (among all
    labels, paired or not) at `min_f1` or more."""
    free_target = set(free_target)

    def best(pairs: Dict[LabelPair, float]) -> LabelPair:
        return max(sorted(pairs), key=pairs.__getitem__)

    matched: Dict[str, str] = {}
    for source in sorted(free_source):
        row = {pair: score for pair, score in f1.items() if pair[0] == source}
        if not row:
            continue
        _, target = best(row)
        column = {pair: score for pair, score in f1.items() if pair[1] == target}
        if target in free_target and best(column)[0] == source and row[(source, target)] >= min_f1:
            matched[source] = target
    return matched


def source_f1(source_pipe: TrainablePipe, examples: Iterable[Example]) -> Dict[LabelPair, float]:
    """overlap_f1 of the source pipe's (a dtn_ner: labels, vocab, pipe) predictions on the examples' texts (in its own
    vocab: it may read static vectors) against the examples' gold entities."""
    gold = [eg.reference for eg in examples]
    texts = (Doc(source_pipe.vocab, words=[t.text for t in doc], spaces=[bool(t.whitespace_) for t in doc]) for doc in gold)
    predicted = [doc.ents for doc in source_pipe.pipe(texts)]
    return overlap_f1(predicted, [doc.ents for doc in gold])


def labels_by_overlap(
    source_pipe: TrainablePipe,
    examples: Iterable[Example],
    target_labels: Sequence[str],
    label_map: Mapping[str, str],
    min_f1: Optional[float],
    where: str,
) -> Dict[str, str]:
    """The pairs the source pipe's predictions on the examples' texts add to `label_map`
    (empty when `min_f1` is None or every label is already paired)."""
    if min_f1 is not None and not 0 < min_f1 <= 1:
        raise ValueError(
            f"map_labels_by_overlap in {where} is {min_f1}: it is the entity F1 (above 0, at most 1) a "
            "source label's predictions on the target's training texts must reach on a target label "
            "for the two to pair, e.g. 0.4, or null for off."
        )
    free_source, free_target = unmatched_labels(source_pipe.labels, target_labels, label_map)
    if min_f1 is None or not free_source or not free_target:
        return {}
    return match_by_overlap(source_f1(source_pipe, examples), free_source, free_target, min_f1)
