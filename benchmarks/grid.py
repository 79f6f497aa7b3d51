"""The benchmark grid: corpus pairs, target fractions, seeds, the training
budget rule, and where each setting's corpora and source pipelines live
(under the git-ignored benchmarks/work), so every benchmark script names
them alike.

Budget policy: every system, and every source pipeline, trains under one
rule, spaCy's own default (`spacy init config`): evaluate on dev every 200
steps, stop when dev has not improved for 1,600 steps or at 20,000 steps,
keep the best dev checkpoint. A record names its budget, so results of an
earlier rule (600 steps each) are never mixed with this one's.

Source policy: one source pipeline per kind and pair, trained once with seed
SOURCE_SEED and reused by every fraction and seed of the pair, as a team
trains its source model once and adapts it to each target sample. A seed
varies the target sample and the target training; under the rule a source
takes 40 to 60 minutes of one core, so a source per seed would triple the
grid's source cost for variance no user meets.

Vectors policy (`--vectors METHOD`): one table per method and pair, built by
`python -m spacy_dtn vectors` with its defaults from the text of the source's
and the whole target's training sets, never from dev or test. The whole target
set's text, at every fraction: a team has all its notes unlabelled, only the
labelled sample is small. Sources are trained with the same table (a source
folder names its method), so sequential transfer starts from weights that
read it."""
from pathlib import Path
from typing import Dict, Optional, Tuple

from spacy_dtn.runs import config_digest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
RESULTS = BENCH / "results"
WORK = BENCH / "work"  # corpora and trained pipelines (git-ignored)
CONFIGS = ROOT / "configs"
# pair name -> (source corpus, target corpus) in assets/: the grid's pairs, whose dev sets choose the defaults
PAIRS = {
    "BC5CDR->NCBI-disease": ("BC5CDR-IOB", "NCBI-disease-IOB"),
    "BC2GM->BioNLP13PC": ("BC2GM-IOB", "BioNLP13PC-IOB"),
}
# Pairs that choose nothing: they check that the defaults hold on data they were not chosen on
# (`--pairs` names them; the default grid leaves them out). BC2GM->NCBI-disease is a source
# that shares no entity type with its target (genes, diseases): does DTN cost the target
# anything when a team picks a source that cannot help?
CHECK_PAIRS = {"BC5CDR->BioNLP13PC": ("BC5CDR-IOB", "BioNLP13PC-IOB"),
               "BC2GM->NCBI-disease": ("BC2GM-IOB", "NCBI-disease-IOB")}
ALL_PAIRS = {**PAIRS, **CHECK_PAIRS}
# Source labels that name a target label differently ([initialize.components.ner] label_map).
LABEL_MAPS = {"BC2GM->BioNLP13PC": {"GENE": "Gene_or_gene_product"},
              "BC5CDR->BioNLP13PC": {"Chemical": "Simple_chemical"}}
# The config each kind of source pipeline trains with.
SOURCE_CONFIGS = {"dtn": CONFIGS / "source.cfg", "trf": CONFIGS / "source_trf.cfg", "spacy": BENCH / "configs" / "spacy_ner.cfg"}
# The config each system trains with (its overrides come from run.system_run); every fixed scheme uses scheme.cfg.
SYSTEM_CONFIGS = {"spacy_ner_target": BENCH / "configs" / "spacy_ner.cfg",
                  "spacy_ner_transfer": BENCH / "configs" / "spacy_ner_transfer.cfg",
                  "baseline": CONFIGS / "baseline.cfg", "dtn_joint": CONFIGS / "dtn.cfg",
                  "dtn_sequential": CONFIGS / "dtn.cfg", "dtn_trf": CONFIGS / "dtn_trf.cfg"}
FRACTIONS = [0.05, 0.1, 0.25, 1.0]
SEEDS = [0, 1, 2]
SCHEME_FRACTION = 0.1  # the target fraction at which every fixed scheme is trained
# The `--quick` setting, where the speed is measured: (pair, target fraction, seed).
QUICK: Tuple[str, float, int] = ("BC5CDR->NCBI-disease", 0.1, 0)
BUDGET = "patience-1600"  # the rule's name in every record and source folder
BUDGET_OVERRIDES = {"training.patience": 1600, "training.max_steps": 20000, "training.eval_frequency": 200}
SOURCE_DEV_COUNT = 1000
SOURCE_SEED = 0
# `python -m spacy_dtn vectors --method M`, and what a spaCy ner config sets to read the table.
VECTOR_METHODS = ["word2vec", "model2vec"]
SPACY_READS_VECTORS = {"components.tok2vec.model.embed.include_static_vectors": True}


def system_config(system: str) -> Path:
    """The config a system trains with: its digest is in every record of the system."""
    return SYSTEM_CONFIGS.get(system, CONFIGS / "scheme.cfg")


def pair_folder(pair: str) -> str:
    """A pair name as a folder name: `BC5CDR->NCBI-disease` -> `BC5CDR-NCBI-disease`."""
    return pair.replace(">", "")


def corpus_paths(pair: str, fraction: float, seed: int) -> Dict[str, Path]:
    """The .spacy files of a setting; the target training set is a seeded fraction."""
    folder = WORK / "corpus" / pair_folder(pair)
    return {
        "source_train": folder / "source_train.spacy",
        "source_dev": folder / "source_dev.spacy",
        "train": folder / f"target_train_{fraction}_{seed}.spacy",
        "dev": folder / "target_dev.spacy",
        "test": folder / "target_test.spacy",
    }


def source_model_path(kind: str, pair: str, vectors: Optional[str] = None) -> Path:
    """The source pipeline of a kind ("dtn", "trf", "spacy"), shared by every
    fraction and seed of a pair. Its folder names its config's digest: once
    the source config changes, a new source is trained rather than an old one
    reused that the targets' configs may no longer fit. It names the vectors
    method too, when the source reads vectors."""
    digest = config_digest(SOURCE_CONFIGS[kind])
    return WORK / "source" / BUDGET / vectors_folder(f"{kind}_{pair_folder(pair)}_{SOURCE_SEED}_{digest}", vectors) / "model-best"


def vectors_folder(name: str, vectors: Optional[str]) -> str:
    """A training's folder name, with the vectors method it reads when it reads one,
    so runs with and without vectors never write over each other."""
    return f"{name}_{vectors}" if vectors else name


def vectors_path(method: str, pair: str) -> Path:
    """The vectors pipeline of a method and pair (Vectors policy above)."""
    return WORK / "vectors" / method / pair_folder(pair)
