"""Joint training data: source and target examples interleaved at a set ratio.

Each example's reference doc is marked with its task, so the component can
route it: source examples train the shared copies and the source head, target
examples the target path. Unmarked examples (a plain `spacy.Corpus.v1`, the
dev set) are target examples.

The .spacy files are read once per training, not once per epoch: every epoch
still makes new Examples (fresh predicted docs, as spaCy's Corpus does) from
the same reference docs, so training sees exactly what it saw before.

v2 takes spaCy's `augmenter` (`[corpora.train.augmenter]`), applied each
epoch anew to every target example and to the source examples the epoch
picks; v1 is v2 without one.
"""
import random
from pathlib import Path
from typing import Callable, Iterable, Iterator, List, Optional, Union

from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Corpus, Example
from spacy.training.augment import dont_augment
from spacy.util import registry
from spacy.vocab import Vocab

from .case_variants import Augmenter
from .plan import SOURCE, TARGET

TASK_KEY = "spacy_dtn.task"


def example_task(example: Example) -> str:
    return example.reference.user_data.get(TASK_KEY, TARGET)


def mark_task(example: Example, task: str) -> Example:
    example.reference.user_data[TASK_KEY] = task
    return example


@registry.readers("spacy_dtn.TransferCorpus.v2")
def create_transfer_corpus(
    source: Optional[Path],
    target: Path,
    source_per_target: float = 1.0,
    seed: int = 0,
    max_length: int = 0,
    augmenter: Optional[Augmenter] = None,
) -> Callable[[Language], Iterator[Example]]:
    return TransferCorpus(source, target, source_per_target, seed, max_length, augmenter)


@registry.readers("spacy_dtn.TransferCorpus.v1")
def create_transfer_corpus_v1(
    source: Optional[Path],
    target: Path,
    source_per_target: float = 1.0,
    seed: int = 0,
    max_length: int = 0,
) -> Callable[[Language], Iterator[Example]]:
    return TransferCorpus(source, target, source_per_target, seed, max_length)


class ReadOnceCorpus(Corpus):
    """spaCy's Corpus, keeping the reference docs it read for a vocab. spaCy
    calls a streamed reader (`max_epochs = -1`, joint training) once per
    epoch, and reading a .spacy file costs about 1 ms a doc (srsly looks its
    msgpack hooks up in catalogue's registry for each doc's user data and
    span groups): re-reading the whole source every epoch was a third of a
    joint training's time. The docs take no more memory than one epoch's
    list of examples did."""

    def __init__(self, path: Path, max_length: int, augmenter: Optional[Augmenter]) -> None:
        super().__init__(path, max_length=max_length, augmenter=augmenter)
        self._docs: List[Doc] = []
        self._vocab: Optional[Vocab] = None

    def read_docbin(self, vocab: Vocab, locs: Iterable[Union[str, Path]]) -> Iterator[Doc]:
        if vocab is not self._vocab:
            self._docs, self._vocab = list(super().read_docbin(vocab, locs)), vocab
        return iter(self._docs)


class TransferCorpus:
    """One call is one epoch: every target example once, plus the next
    `source_per_target * len(target)` source examples of a seeded cycle through
    the source corpus, so successive epochs (spaCy's streaming mode,
    `max_epochs = -1`) see new source data instead of the same slice."""

    def __init__(
        self,
        source: Optional[Path],
        target: Path,
        source_per_target: float,
        seed: int,
        max_length: int,
        augmenter: Optional[Augmenter] = None,
    ) -> None:
        if source_per_target < 0:
            raise ValueError(
                f"source_per_target = {source_per_target} in the TransferCorpus reader: use 0 or more."
            )
        if source is None and source_per_target > 0:
            raise ValueError(
                "The TransferCorpus reader has source_per_target > 0 but no source corpus: "
                "set [paths.source_train], or source_per_target = 0 for target-only training."
            )
        # Source examples are augmented once picked: an epoch uses a slice of the source.
        self.source = ReadOnceCorpus(source, max_length, None) if source is not None else None
        self.target = ReadOnceCorpus(target, max_length, augmenter)
        self.augmenter = augmenter if augmenter is not None else dont_augment
        self.source_per_target = source_per_target
        self.random = random.Random(seed)
        self.position = 0
        self.source_order: List[int] = []

    def __call__(self, nlp: Language) -> Iterator[Example]:
        target = [mark_task(eg, TARGET) for eg in self.target(nlp)]
        if not target:
            raise ValueError(f"The target corpus {self.target.path} has no examples.")
        source = list(self.source(nlp)) if self.source is not None and self.source_per_target > 0 else []
        if not source and self.source_per_target > 0:
            raise ValueError(f"The source corpus {self.source.path} has no examples.")
        if len(self.source_order) != len(source):
            self.source_order = list(range(len(source)))
            self.random.shuffle(self.source_order)
        wanted = round(self.source_per_target * len(target))
        picked = []
        for _ in range(wanted):
            example = source[self.source_order[self.position]]
            picked.extend(mark_task(variant, SOURCE) for variant in self.augmenter(nlp, example))
            self.position = (self.position + 1) % len(source)
        examples = target + picked
        self.random.shuffle(examples)
        yield from examples
