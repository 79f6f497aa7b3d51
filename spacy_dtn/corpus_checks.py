"""Checks of the training set-up that must fail before training starts.

spaCy evaluates on the dev set only after `eval_frequency` steps, so an
empty or unsuitable dev corpus otherwise costs a training run: an empty dev
set fails only at the first evaluation, and a label the dev set never
contains has no dev score at all, so model selection silently ignores it.

Use as `[initialize.after_init]`, which `spacy train` runs after
`nlp.initialize()` (the component knows its labels then) and before the
first update:

    [initialize.after_init]
    @callbacks = "spacy_dtn.check_dev_corpus.v1"
    component = "ner"
    allow_missing_labels = false
"""
import warnings
from typing import Callable, List, Optional, Set

from spacy.language import Language
from spacy.training import Example
from spacy.util import registry, resolve_dot_names


class DevCorpusError(ValueError):
    """The dev corpus cannot evaluate the component: the message names the
    corpus and what to change."""


@registry.callbacks("spacy_dtn.check_dev_corpus.v1")
def create_dev_corpus_check(
    component: str = "ner", allow_missing_labels: bool = False
) -> Callable[[Language], Language]:
    """An `after_init` callback: the dev corpus named by `[training]
    dev_corpus` must have examples, and (unless `allow_missing_labels`) an
    entity of every label of `component`."""

    def check_dev_corpus(nlp: Language) -> Language:
        check_dev_examples(nlp, component=component, allow_missing_labels=allow_missing_labels)
        return nlp

    return check_dev_corpus


def check_dev_examples(
    nlp: Language, *, component: str = "ner", allow_missing_labels: bool = False
) -> List[Example]:
    """Read the dev corpus of `nlp.config` and check it against the labels of
    `component`; returns the dev examples."""
    config = nlp.config.interpolate()
    dot_name = config["training"]["dev_corpus"]
    where = f"[training] dev_corpus = {dot_name!r}"
    try:
        (corpus,) = resolve_dot_names(config, [dot_name])
    except Exception as err:  # config errors of any reader
        raise DevCorpusError(f"Could not resolve the dev corpus ({where}): {err}") from None
    path = corpus_path(corpus)
    where = f"the dev corpus {path} ({where})" if path is not None else f"the dev corpus ({where})"
    try:
        examples = list(corpus(nlp))
    except (OSError, ValueError) as err:
        raise DevCorpusError(f"Could not read {where}: {err}") from None
    if not examples:
        raise DevCorpusError(
            f"No examples in {where}: training would evaluate on nothing. "
            "Check [paths.dev] and that the file holds annotated documents."
        )
    if component not in nlp.pipe_names:
        raise DevCorpusError(
            f"The dev corpus check names the component {component!r}, but the pipeline has "
            f"{nlp.pipe_names}: set `component` in [initialize.after_init]."
        )
    labels = getattr(nlp.get_pipe(component), "labels", ())
    found: Set[str] = {ent.label_ for eg in examples for ent in eg.reference.ents}
    missing = sorted(set(labels) - found)
    if missing:
        message = (
            f"The label(s) {missing} of component {component!r} never occur in {where} "
            f"({len(examples)} examples, labels found: {sorted(found)}): their dev scores "
            "would be empty and model selection would ignore them."
        )
        if not allow_missing_labels:
            raise DevCorpusError(
                f"{message} Use a dev set with every label, or set allow_missing_labels = true "
                "in [initialize.after_init] to train anyway."
            )
        warnings.warn(message, UserWarning)
    return examples


def corpus_path(corpus: object) -> Optional[str]:
    """The file or folder a corpus reader reads (spaCy's Corpus, the
    converters' readers, and the target side of TransferCorpus)."""
    target = getattr(corpus, "target", None)
    for reader in (corpus, target):
        path = getattr(reader, "path", None)
        if path is not None:
            return str(path)
    return None
