"""What `map_labels_by_overlap` finds on the grid's pairs, next to the maps the grid
writes by hand (grid.LABEL_MAPS): the check that the inference pairs what a person who
read both corpora's guidelines paired, at every target sample. It trains nothing: it
reads the source pipelines `benchmarks.run` trained and the target training samples
(never dev or test), and skips what is not there yet.

    python -m benchmarks.label_maps --vectors model2vec
"""
import argparse
import sys
from pathlib import Path
from typing import List, Optional

import spacy

if not __package__:  # run as a script: the package it belongs to must be importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from spacy.training import Example
from spacy.tokens import DocBin
from spacy_dtn.label_matching import match_by_overlap, source_f1, unmatched_labels
from spacy_dtn.search import corpus_labels
from spacy_dtn.tables import markdown_table

from benchmarks.grid import ALL_PAIRS, FRACTIONS, LABEL_MAPS, SEEDS, corpus_paths, source_model_path


def found_maps(pairs: List[str], fractions: List[float], seeds: List[int], min_f1: float, vectors: Optional[str]) -> List[list]:
    """One row per sample: the pairs found, the hand map, and the two best-scoring label pairs."""
    rows = []
    for pair in pairs:
        source_path = source_model_path("dtn", pair, vectors)
        if not (source_path.parent / "trained.json").exists():
            print(f"{pair}: no trained source at {source_path} (benchmarks.run trains it); skipped")
            continue
        source = spacy.load(source_path).get_pipe("ner")
        for fraction in fractions:
            for seed in seeds:
                train = corpus_paths(pair, fraction, seed)["train"]
                if not train.exists():
                    continue
                docs = DocBin().from_disk(train).get_docs(source.vocab)
                f1 = source_f1(source, [Example(doc, doc) for doc in docs])
                free_source, free_target = unmatched_labels(source.labels, corpus_labels(train), {})
                found = match_by_overlap(f1, free_source, free_target, min_f1)
                top = ", ".join(f"{s}→{t} {score:.2f}" for (s, t), score in sorted(f1.items(), key=lambda x: -x[1])[:2])
                rows.append([pair, fraction, seed, found, LABEL_MAPS.get(pair, {}), top,
                             "same" if found == LABEL_MAPS.get(pair, {}) else "**differs**"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", nargs="+", default=list(ALL_PAIRS), choices=list(ALL_PAIRS))
    parser.add_argument("--fractions", nargs="+", type=float, default=FRACTIONS)
    parser.add_argument("--seeds", nargs="+", type=int, default=SEEDS)
    parser.add_argument("--min-f1", type=float, default=0.4, help="map_labels_by_overlap")
    parser.add_argument("--vectors", default=None, help="the sources trained with this vectors method")
    args = parser.parse_args()
    rows = found_maps(args.pairs, args.fractions, args.seeds, args.min_f1, args.vectors)
    headers = ["pair", "fraction", "seed", "found", "by hand (grid.LABEL_MAPS)", "best two F1 (source label as target label)", ""]
    print("\n".join(markdown_table(headers, rows)))


if __name__ == "__main__":
    main()
