"""The `dtn_ner` pipeline component: a BiLSTM-CRF entity recogniser that can
learn from a source corpus through shared, private or gated layers.

It sets `doc.ents` and scores like spaCy's `ner`, so it drops into the same
place in a pipeline, `spacy train`, `spacy evaluate` and `spacy.load`.
"""
import pickle
import re
from collections import defaultdict
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import srsly
import torch
from spacy import util
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc, Span
from spacy.training import Example, validate_examples, validate_get_examples
from spacy.vocab import Vocab
from thinc.api import Model, Optimizer, xp2torch

from . import __version__
from .confidence import entity_confidences, set_scored_spans
from .pytorch_crf import negative_log_likelihood, viterbi_decode
from .pytorch_tagger import SHARABLE_LAYERS, SOURCE, TARGET, gate_means
from .source_weights import copy_source_weights, freeze_shared
from .tag_scheme import TAG_SCHEMES, check_tag_scheme, make_tag_names, spans_from_tags, tags_from_biluo
from .tagger_model import TaggerInput, TaggerOutput, compute_features, finish_update, get_torch_module
from .transfer_corpus import example_task

# (start, end, label, confidence or None) of the entities of one doc.
EntitySpans = List[Tuple[int, int, str, Optional[float]]]
GATE_SCORE_PREFIX = "gate_"
GATE_BATCH = 256
# Padded tokens (segments x longest segment) per forward pass in predict: a
# long document or a large nlp.pipe batch is tagged in passes of this size,
# so memory does not grow with the input.
PREDICT_BATCH_TOKENS = 4096
# The cfg saved with the component: its keys and types. A saved cfg with other
# keys, or stamped with another major.minor version, is refused on load.
VERSION_KEY = "spacy_dtn_version"
CFG_LAYOUT = {"labels": list, "source_labels": list, "tag_scheme": str, VERSION_KEY: str}
# 0.1.0 saved its cfg without the version stamp: that layout, unstamped, is 0.1.0.
UNSTAMPED_LAYOUT = ("labels", "source_labels", "tag_scheme")
UNSTAMPED_VERSION = "0.1.0"


class SavedModelError(ValueError):
    """A saved component that cannot be loaded: the message names the file and
    what is wrong with it."""


DEFAULT_MODEL = """
[model]
@architectures = "spacy_dtn.DynamicTransferTagger.v1"
gated = ["char_embed", "char_lstm", "word_embed", "word_lstm"]
gate = "dynamic"
shared = []

[model.settings]
@misc = "spacy_dtn.TaggerSettings.v1"
"""


@Language.factory(
    "dtn_ner",
    assigns=["doc.ents", "token.ent_iob", "token.ent_type", "doc.spans"],
    default_config={
        "model": util.load_config_from_str(DEFAULT_MODEL)["model"],
        "tag_scheme": "BILUO",
        "keep_existing_ents": False,
        "max_segment_length": 256,
        "freeze_shared": False,
        "confidence": True,
        "spans_key": "dtn_ents",
        "confidence_temperature": 1.0,
        "scorer": {"@scorers": "spacy.ner_scorer.v1"},
    },
    default_score_weights={
        "ents_f": 1.0,
        "ents_p": 0.0,
        "ents_r": 0.0,
        "ents_per_type": None,
        **{GATE_SCORE_PREFIX + layer: 0.0 for layer in SHARABLE_LAYERS},
    },
)
def make_dtn_ner(
    nlp: Language,
    name: str,
    model: Model[TaggerInput, TaggerOutput],
    tag_scheme: str,
    keep_existing_ents: bool,
    max_segment_length: int,
    freeze_shared: bool,
    confidence: bool,
    spans_key: str,
    confidence_temperature: float,
    scorer: Optional[Callable],
) -> "DynamicTransferNER":
    return DynamicTransferNER(
        nlp.vocab,
        model,
        name,
        tag_scheme=tag_scheme,
        keep_existing_ents=keep_existing_ents,
        max_segment_length=max_segment_length,
        freeze_shared=freeze_shared,
        confidence=confidence,
        spans_key=spans_key,
        confidence_temperature=confidence_temperature,
        scorer=scorer,
    )


class DynamicTransferNER(TrainablePipe):
    def __init__(
        self,
        vocab: Vocab,
        model: Model[TaggerInput, TaggerOutput],
        name: str = "ner",
        *,
        tag_scheme: str = "BILUO",
        keep_existing_ents: bool = False,
        max_segment_length: int = 256,
        freeze_shared: bool = False,
        confidence: bool = True,
        spans_key: str = "dtn_ents",
        confidence_temperature: float = 1.0,
        scorer: Optional[Callable] = None,
    ) -> None:
        if max_segment_length < 1:
            raise ValueError(
                f"max_segment_length = {max_segment_length} in [components.{name}]: use 1 or more."
            )
        self.vocab = vocab
        self.model = model
        self.name = name
        self.scorer = scorer
        self.keep_existing_ents = keep_existing_ents
        self.max_segment_length = max_segment_length
        self.freeze_shared = freeze_shared
        if confidence_temperature <= 0:
            raise ValueError(
                f"confidence_temperature = {confidence_temperature} in [components.{name}]: use a "
                "number above 0 (1 keeps the model's probabilities)."
            )
        # Entity confidence (confidence.py): doc.spans[spans_key] with scores.
        self.confidence = confidence
        self.spans_key = spans_key
        self.confidence_temperature = confidence_temperature
        self.cfg = {
            "labels": [],
            "source_labels": [],
            "tag_scheme": check_tag_scheme(tag_scheme),
            VERSION_KEY: __version__,
        }
        model.attrs["tag_scheme"] = tag_scheme

    @property
    def labels(self) -> Tuple[str, ...]:
        return tuple(self.cfg["labels"])

    @property
    def source_labels(self) -> Tuple[str, ...]:
        return tuple(self.cfg["source_labels"])

    @property
    def label_data(self) -> List[str]:
        return list(self.labels)

    def add_label(self, label: str) -> int:
        if label in self.cfg["labels"]:
            return 0
        if self._is_built():
            raise ValueError(
                f"Cannot add label {label!r} to the initialized component '{self.name}': "
                "its output layer is sized. Add labels before nlp.initialize()."
            )
        self.cfg["labels"] = sorted([*self.cfg["labels"], label])
        return 1

    def tag_names(self, task: str = TARGET) -> List[str]:
        labels = self.cfg["labels"] if task == TARGET else self.cfg["source_labels"]
        return make_tag_names(labels, self.cfg["tag_scheme"])

    # Prediction

    def segments(self, docs: Iterable[Doc]) -> Iterator[Tuple[int, Span]]:
        """Sentences (when set) cut to at most max_segment_length tokens: the
        BiLSTM's memory is bounded by the segment, not by the document."""
        step = self.max_segment_length
        for i, doc in enumerate(docs):
            parts = doc.sents if doc.has_annotation("SENT_START") else [doc[:]]
            for part in parts:
                for start in range(part.start, part.end, step):
                    yield i, doc[start : min(start + step, part.end)]

    def predict(self, docs: Iterable[Doc]) -> List[EntitySpans]:
        docs = list(docs)
        found: List[EntitySpans] = [[] for _ in docs]
        names = self.tag_names(TARGET)
        for batch in self._predict_batches(self.segments(docs)):
            outputs = self.model.predict(([s for _, s in batch], TARGET))
            paths = viterbi_decode(*outputs)
            spans = [spans_from_tags([names[t] for t in path], self.cfg["tag_scheme"]) for path in paths]
            scores = self._confidences(outputs, spans, names)
            for (i, segment), row, row_scores in zip(batch, spans, scores):
                for (s, e, label), score in zip(row, row_scores):
                    found[i].append((segment.start + s, segment.start + e, label, score))
        return found

    def _confidences(self, outputs: TaggerOutput, spans: List[List[Tuple[int, int, str]]], names: List[str]) -> List[List[Optional[float]]]:
        """Each entity's CRF probability; None everywhere when confidence is off
        (then nothing is computed)."""
        if not self.confidence:
            return [[None] * len(row) for row in spans]
        return entity_confidences(outputs, spans, names, self.cfg["tag_scheme"], self.confidence_temperature)

    def _predict_batches(self, indexed: Iterable[Tuple[int, Span]]) -> Iterator[List[Tuple[int, Span]]]:
        """Group segments into forward passes of at most PREDICT_BATCH_TOKENS
        padded tokens (at least one segment per pass)."""
        budget = max(PREDICT_BATCH_TOKENS, self.max_segment_length)
        batch: List[Tuple[int, Span]] = []
        longest = 0
        for item in indexed:
            length = len(item[1])
            if batch and (len(batch) + 1) * max(longest, length) > budget:
                yield batch
                batch, longest = [], 0
            batch.append(item)
            longest = max(longest, length)
        if batch:
            yield batch

    def set_annotations(self, docs: Iterable[Doc], predictions: List[EntitySpans]) -> None:
        for doc, spans in zip(docs, predictions):
            predicted = [Span(doc, s, e, label=label) for s, e, label, _ in spans]
            if self.confidence:
                set_scored_spans(doc, self.spans_key, predicted, [score for *_, score in spans])
            if self.keep_existing_ents and doc.ents:
                taken = {i for ent in doc.ents for i in range(ent.start, ent.end)}
                predicted = list(doc.ents) + [
                    span for span in predicted if not taken.intersection(range(span.start, span.end))
                ]
            doc.ents = sorted(predicted, key=lambda span: span.start)

    # Training

    def update(
        self,
        examples: Iterable[Example],
        *,
        drop: float = 0.0,
        sgd: Optional[Optimizer] = None,
        losses: Optional[Dict[str, float]] = None,
    ) -> Dict[str, float]:
        """Source and target examples go through their own paths; the
        architecture's dropout applies (not `drop`), as in spacy-transformers."""
        losses = {} if losses is None else losses
        losses.setdefault(self.name, 0.0)
        examples = list(examples)
        validate_examples(examples, "DynamicTransferNER.update")
        by_task: Dict[str, List[Example]] = defaultdict(list)
        for eg in examples:
            by_task[example_task(eg)].append(eg)
        for task, task_examples in sorted(by_task.items()):
            segments, gold = self._gold_segments(task_examples, task)
            if not segments:
                continue
            outputs, backprop = self.model.begin_update((segments, task))
            loss, grads = self._crf_loss(outputs, gold)
            backprop(grads)
            losses[self.name] += loss
        if sgd is not None:
            self.finish_update(sgd)
        return losses

    def finish_update(self, sgd: Optimizer) -> None:
        finish_update(self.model, sgd)
        # Thinc zeroes gradients instead of dropping them, and its optimiser
        # then still moves parameters with zero gradient (momentum, weight
        # decay). Dropping them keeps a source batch off target-private copies.
        for param in get_torch_module(self.model).parameters():
            param.grad = None

    def get_loss(self, examples: Iterable[Example], scores: TaggerOutput) -> Tuple[float, Tuple]:
        segments, gold = self._gold_segments(list(examples), TARGET)
        return self._crf_loss(scores, gold)

    def _gold_segments(self, examples: Sequence[Example], task: str) -> Tuple[List[Span], List[List[int]]]:
        """Segments of the predicted docs with their gold tag ids. Segments with
        missing or misaligned annotation carry no signal for a CRF, so they are
        left out of the loss."""
        index = {tag: i for i, tag in enumerate(self.tag_names(task))}
        segments, gold = [], []
        for eg in examples:
            aligned = eg.get_aligned_ner()
            for _, segment in self.segments([eg.predicted]):
                biluo = aligned[segment.start : segment.end]
                if any(tag is None or tag == "-" for tag in biluo):
                    continue
                tags = tags_from_biluo(biluo, self.cfg["tag_scheme"])
                unknown = sorted({t for t in tags if t not in index})
                if unknown:
                    raise ValueError(
                        f"The {task} example {eg.reference.text[:60]!r} has tags {unknown} that the "
                        f"component '{self.name}' does not know (labels: {self.labels if task == TARGET else self.source_labels}). "
                        "Initialize with data that contains every label."
                    )
                segments.append(segment)
                gold.append([index[t] for t in tags])
        return segments, gold

    def _crf_loss(self, outputs: TaggerOutput, gold: List[List[int]]) -> Tuple[float, Tuple]:
        emissions, start, transitions, end, mask = outputs
        tags = torch.zeros(mask.shape, dtype=torch.long, device=emissions.device)
        for b, row in enumerate(gold):
            tags[b, : len(row)] = torch.tensor(row, dtype=torch.long)
        nll = negative_log_likelihood(emissions, tags, start, transitions, end, mask).sum()
        grads = torch.autograd.grad(nll, [emissions, start, transitions, end])
        return float(nll.detach()), (*grads, None)

    # Initialization

    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Optional[Language] = None,
        labels: Optional[List[str]] = None,
        source_model: Optional[str] = None,
        source_component: str = "ner",
    ) -> None:
        """Learn the label sets and build the tagger. With `source_model` (the
        path of a pipeline trained with configs/source.cfg) the copies the
        source task reads start from that pipeline's weights (sequential)."""
        validate_get_examples(get_examples, "DynamicTransferNER.initialize")
        found: Dict[str, set] = {TARGET: set(), SOURCE: set()}
        for eg in get_examples():
            found[example_task(eg)].update(ent.label_ for ent in eg.reference.ents)
        target_labels = sorted(labels) if labels is not None else sorted(found[TARGET])
        if not target_labels:
            raise ValueError(
                f"No entity labels found in the target training data for '{self.name}': "
                "check [paths.train] and that its docs have doc.ents set."
            )
        source = self._load_source(source_model, source_component) if source_model else None
        source_labels = list(source.labels) if source is not None else sorted(found[SOURCE])
        missing = sorted(found[SOURCE] - set(source_labels))
        if missing:
            raise ValueError(
                f"The source examples have labels {missing} that the source pipeline "
                f"{source_model} does not predict (it has {source_labels})."
            )
        self.cfg["labels"] = target_labels
        self.cfg["source_labels"] = source_labels
        self._build_model()
        if source is not None:
            copy_source_weights(self.model, source.model, source_model)
        if self.freeze_shared:
            freeze_shared(get_torch_module(self.model))

    def _load_source(self, path: str, component: str) -> "DynamicTransferNER":
        try:
            source_nlp = util.load_model(path)
        except (OSError, IOError) as err:
            raise ValueError(
                f"Could not load the source pipeline {path!r} named in "
                f"[initialize.components.{self.name}] source_model: {err}"
            ) from None
        if component not in source_nlp.pipe_names:
            raise ValueError(
                f"The source pipeline {path!r} has no component {component!r} "
                f"(it has {source_nlp.pipe_names}): set source_component."
            )
        source = source_nlp.get_pipe(component)
        if not isinstance(source, DynamicTransferNER):
            raise ValueError(f"The component {component!r} of {path!r} is not a dtn_ner component.")
        if source.cfg["tag_scheme"] != self.cfg["tag_scheme"]:
            raise ValueError(
                f"The source pipeline {path!r} tags with {source.cfg['tag_scheme']} but "
                f"'{self.name}' with {self.cfg['tag_scheme']}: use the same tag_scheme in both configs."
            )
        return source

    def _is_built(self) -> bool:
        return bool(self.model.attrs["tag_names"])

    def _build_model(self) -> None:
        tag_names = {TARGET: self.tag_names(TARGET)}
        if self.cfg["source_labels"]:
            tag_names[SOURCE] = self.tag_names(SOURCE)
        self.model.attrs["tag_names"] = tag_names
        self.model.initialize()

    # Gate read-out and scoring

    def gate_values(self, docs: Iterable[Doc]) -> Dict[str, float]:
        """How much of each layer the target takes from the shared copy: the
        mean gate over the docs' tokens for gated layers, 1 for shared layers
        and 0 for private ones."""
        module = get_torch_module(self.model)
        sums: Dict[str, List[float]] = defaultdict(lambda: [0.0, 0])
        # Without a gated layer every value is fixed: no forward pass needed.
        has_gates = any(mode == "gated" for mode in module.plan.values())
        segments = [s for _, s in self.segments(docs)] if has_gates else []
        device = next(module.parameters()).device
        module.eval()
        with torch.no_grad():
            for batch in util.minibatch(segments, GATE_BATCH):
                features, _ = compute_features(self.model, batch, is_train=False)
                tensors = {k: xp2torch(v, device=device) for k, v in features.items()}
                gates: Dict[str, torch.Tensor] = {}
                *_, token_mask = module(**tensors, task=TARGET, gates=gates)
                char_mask = tensors["chars"] > 0 if "chars" in tensors else None
                for layer, (total, count) in gate_means(gates, char_mask, token_mask).items():
                    sums[layer][0] += total
                    sums[layer][1] += count
        module.train()
        fixed = {"shared": 1.0, "private": 0.0}
        return {
            layer: sums[layer][0] / max(sums[layer][1], 1) if mode == "gated" else fixed[mode]
            for layer, mode in module.plan.items()
        }

    def score(self, examples: Iterable[Example], **kwargs) -> Dict[str, object]:
        examples = list(examples)
        scores = dict(self.scorer(examples, **kwargs)) if self.scorer else {}
        gates = self.gate_values(eg.predicted for eg in examples)
        scores.update({GATE_SCORE_PREFIX + layer: value for layer, value in gates.items()})
        return scores

    # Serialization: the tagger's size depends on the labels in cfg, so the
    # model is built from cfg before its weights are read. The cfg is checked
    # first (layout and version) so that a wrong or foreign file fails with a
    # message about that file, not with a tensor size mismatch.

    def to_disk(self, path: Path, *, exclude: Iterable[str] = tuple()) -> None:
        self.cfg[VERSION_KEY] = __version__
        super().to_disk(path, exclude=exclude)

    def to_bytes(self, *, exclude: Iterable[str] = tuple()) -> bytes:
        self.cfg[VERSION_KEY] = __version__
        return super().to_bytes(exclude=exclude)

    def from_disk(self, path: Path, *, exclude: Iterable[str] = tuple()) -> "DynamicTransferNER":
        path = util.ensure_path(path)
        if not path.is_dir():
            raise SavedModelError(
                f"The folder {path} of component '{self.name}' is missing or not a folder: the "
                "pipeline was not saved completely (it needs cfg and model there); re-save it."
            )
        for name in ("cfg", "model"):
            if name not in exclude and not (path / name).is_file():
                raise SavedModelError(
                    f"{path / name} is missing: the pipeline was not saved completely "
                    f"(component '{self.name}' needs cfg and model in {path}); re-save it."
                )

        def read_cfg(p: Path) -> None:
            try:
                cfg = srsly.read_json(p)
            except ValueError as err:
                raise SavedModelError(
                    f"{p} is not valid JSON ({err}): the file is truncated or corrupt; "
                    "re-save the pipeline."
                ) from None
            self._set_cfg(cfg, str(p))

        deserialize = {
            "cfg": read_cfg,
            "vocab": lambda p: self.vocab.from_disk(p, exclude=exclude),
            "model": lambda p: self._load_weights(p.read_bytes(), str(p)),
        }
        util.from_disk(path, deserialize, exclude)
        return self

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = tuple()) -> "DynamicTransferNER":
        where = f"the bytes of component '{self.name}'"

        def read_cfg(b: bytes) -> None:
            try:
                cfg = srsly.json_loads(b)
            except ValueError as err:
                raise SavedModelError(f"The cfg in {where} is not valid JSON ({err}): re-save the component.") from None
            self._set_cfg(cfg, f"the cfg in {where}")

        deserialize = {
            "cfg": read_cfg,
            "vocab": lambda b: self.vocab.from_bytes(b, exclude=exclude),
            "model": lambda b: self._load_weights(b, where),
        }
        try:
            util.from_bytes(bytes_data, deserialize, exclude)
        except SavedModelError:
            raise
        except (ValueError, TypeError) as err:
            raise SavedModelError(f"Could not read {where}: {err}. The bytes are truncated or corrupt.") from None
        return self

    def _set_cfg(self, cfg: object, where: str) -> None:
        self.cfg.update(check_saved_cfg(cfg, where))
        self.cfg[VERSION_KEY] = __version__

    def _load_weights(self, data: bytes, where: str) -> None:
        self._build_model()
        try:
            self.model.from_bytes(data)
        except pickle.UnpicklingError as err:
            raise SavedModelError(
                f"Refused to load the weights of '{self.name}' from {where}: the torch state holds "
                f"objects other than tensors ({_unpickling_reason(err)}). Loading never unpickles arbitrary objects; "
                "a file saved by spacy-dtn holds only tensors, so this one was altered or is not "
                "from spacy-dtn. Do not use it; re-save or retrain the pipeline."
            ) from None
        except (ValueError, KeyError, RuntimeError, EOFError, TypeError, IndexError) as err:
            raise SavedModelError(
                f"Could not load the weights of '{self.name}' from {where}: {err}. The file is "
                "truncated or corrupt, or was saved with other labels or settings than its "
                "cfg and config.cfg say; re-save or retrain the pipeline."
            ) from None


def _unpickling_reason(err: Exception) -> str:
    """The one informative line of torch's weights-only error (which goes on
    to suggest weights_only=False: not something to pass on)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(err))
    for line in text.splitlines():
        if "WeightsUnpickler error:" in line:
            return line.split("WeightsUnpickler error:", 1)[1].split(". Please", 1)[0].strip()
    return text.splitlines()[0][:200] if text else type(err).__name__


def _major_minor(version: str) -> Optional[Tuple[int, int]]:
    parts = version.split(".")
    if len(parts) < 2 or not all(p.isdigit() for p in parts[:2]):
        return None
    return int(parts[0]), int(parts[1])


def check_saved_cfg(cfg: object, where: str) -> Dict[str, object]:
    """The cfg of a saved dtn_ner component, if this version can read it:
    stamped with the same major.minor version and exactly the known keys."""
    if not isinstance(cfg, dict):
        raise SavedModelError(
            f"{where} is not a dtn_ner cfg (a JSON object); found a {type(cfg).__name__}: "
            "the file is corrupt or from another component; re-save the pipeline."
        )
    saved = cfg.get(VERSION_KEY)
    if saved is None:
        if set(cfg) != set(UNSTAMPED_LAYOUT):
            raise SavedModelError(
                f"{where} has no {VERSION_KEY!r} and keys {sorted(cfg)}: it was not saved by "
                f"spacy-dtn (an unknown version, or another component). This is spacy-dtn "
                f"{__version__}: retrain the pipeline with it."
            )
        cfg = {**cfg, VERSION_KEY: UNSTAMPED_VERSION}
        saved = UNSTAMPED_VERSION
    if not isinstance(saved, str) or _major_minor(saved) is None or _major_minor(saved) != _major_minor(__version__):
        raise SavedModelError(
            f"{where} was saved by spacy-dtn {saved}, but this is spacy-dtn {__version__}: "
            "versions with another major.minor may store the model differently. Load it with "
            f"spacy-dtn {saved}, or retrain the pipeline with {__version__}."
        )
    unknown = sorted(set(cfg) - set(CFG_LAYOUT))
    missing = sorted(set(CFG_LAYOUT) - set(cfg))
    wrong = sorted(k for k, kind in CFG_LAYOUT.items() if k in cfg and not isinstance(cfg[k], kind))
    if unknown or missing or wrong:
        raise SavedModelError(
            f"{where} has a layout spacy-dtn {__version__} does not know (saved by spacy-dtn {saved}): "
            f"unknown keys {unknown}, missing keys {missing}, wrong types {wrong}; expected the keys "
            f"{sorted(CFG_LAYOUT)}. Re-save the pipeline with spacy-dtn {__version__}."
        )
    bad_labels = [x for x in cfg["labels"] + cfg["source_labels"] if not isinstance(x, str) or not x]
    if bad_labels or cfg["tag_scheme"] not in TAG_SCHEMES:
        raise SavedModelError(
            f"{where} has invalid values: labels must be non-empty strings (bad: {bad_labels}) and "
            f"tag_scheme one of {list(TAG_SCHEMES)} (found {cfg['tag_scheme']!r}). Re-save the pipeline."
        )
    return dict(cfg)
