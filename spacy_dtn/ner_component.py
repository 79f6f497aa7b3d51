"""The `dtn_ner` pipeline component: a BiLSTM-CRF entity recogniser that can
learn from a source corpus through shared, private or gated layers.

It sets `doc.ents` and scores like spaCy's `ner`, so it drops into the same
place in a pipeline, `spacy train`, `spacy evaluate` and `spacy.load`.
"""
import pickle
from collections import defaultdict
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from spacy import util
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc, Span
from spacy.training import Example, validate_examples, validate_get_examples
from spacy.vocab import Vocab
from thinc.api import Model, Optimizer

from . import __version__
from .confidence import entity_confidences, set_scored_spans
from .label_matching import labels_by_overlap
from .plan import GATE_SCORE_PREFIX, GATED, SHARABLE_LAYERS, SHARED, SOURCE, TARGET, VECTOR_LAYERS
from .reading import Reading, column_break_flags, read_training_segment, read_window
from .segments import Window, continues_entity, prediction_windows, training_windows
from .saved_format import VERSION_KEY, SavedModelError, check_saved_folder, parse_saved_cfg, unpickling_reason
from .source_weights import common_tag_rows, copy_source_weights, freeze_shared_copies
from .tag_scheme import boundary_tags, check_tag_scheme, continuing_tags, make_tag_names, spans_from_tags, tags_from_biluo
from .tagger_model import (
    TaggerInput,
    TaggerOutput,
    TagSet,
    best_tag_paths,
    built_plan,
    forbid_tags,
    gate_totals,
    has_tags,
    initialize_for_loading,
    prediction_cache,
    serve_bfloat16,
    serve_quantized,
    set_static_vectors,
    set_tags,
    step_optimizer,
    tagging_loss,
    torch_params_in_use,
    uncached_prediction,
    whitespace_flags,
)
from .transfer_corpus import example_task
from .transformer_model import has_transformer

# (start, end, label, confidence or None) of the entities of one doc.
EntitySpans = List[Tuple[int, int, str, Optional[float]]]
# Padded tokens (segments x longest segment) per forward pass in predict: a
# long document or a large nlp.pipe batch is tagged in passes of this size,
# so memory does not grow with the input.
PREDICT_BATCH_TOKENS = 4096


DEFAULT_MODEL = """
[model]
@architectures = "spacy_dtn.BiLSTMTransferTagger.v1"
gated = ["char_embed", "char_lstm", "word_embed", "word_lstm"]
gate = "dynamic"
shared = []
gate_bias = 2.0
gate_learn_rate_scale = 10.0

[model.settings]
@misc = "spacy_dtn.TaggerSettings.v2"
"""


@Language.factory(
    "dtn_ner",
    assigns=["doc.ents", "token.ent_iob", "token.ent_type", "doc.spans"],
    default_config={
        "model": util.load_config_from_str(DEFAULT_MODEL)["model"],
        "tag_scheme": "BILUO",
        "keep_existing_ents": False,
        "max_segment_length": 256,
        "window_margin": 32,
        "freeze_shared": False,
        "confidence": True,
        "spans_key": "dtn_ents",
        "confidence_temperature": 1.0,
        "quantize": False,
        "bfloat16": False,
        "lowercase_capitals": True,
        "scorer": {"@scorers": "spacy.ner_scorer.v1"},
    },
    default_score_weights={
        "ents_f": 1.0,
        "ents_p": 0.0,
        "ents_r": 0.0,
        "ents_per_type": None,
        **{GATE_SCORE_PREFIX + layer: 0.0 for layer in dict.fromkeys(SHARABLE_LAYERS + VECTOR_LAYERS)},
    },
)
def make_dtn_ner(
    nlp: Language,
    name: str,
    model: Model[TaggerInput, TaggerOutput],
    tag_scheme: str,
    keep_existing_ents: bool,
    max_segment_length: int,
    window_margin: int,
    freeze_shared: bool,
    confidence: bool,
    spans_key: str,
    confidence_temperature: float,
    quantize: bool,
    bfloat16: bool,
    lowercase_capitals: bool,
    scorer: Optional[Callable],
) -> "DynamicTransferNER":
    return DynamicTransferNER(
        nlp.vocab,
        model,
        name,
        tag_scheme=tag_scheme,
        keep_existing_ents=keep_existing_ents,
        max_segment_length=max_segment_length,
        window_margin=window_margin,
        freeze_shared=freeze_shared,
        confidence=confidence,
        spans_key=spans_key,
        confidence_temperature=confidence_temperature,
        quantize=quantize,
        bfloat16=bfloat16,
        lowercase_capitals=lowercase_capitals,
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
        window_margin: int = 32,
        freeze_shared: bool = False,
        confidence: bool = True,
        spans_key: str = "dtn_ents",
        confidence_temperature: float = 1.0,
        quantize: bool = False,
        bfloat16: bool = False,
        lowercase_capitals: bool = True,
        scorer: Optional[Callable] = None,
    ) -> None:
        """`max_segment_length`: the most tokens the tagger reads at once;
        `window_margin`: tokens of context on each side where a longer
        sentence or doc is tagged in overlapping windows (segments.py);
        `quantize`: a pipeline loaded from disk or bytes predicts with int8
        LSTM and Linear layers (CPU serving); `bfloat16`: one so loaded runs
        its transformer under bfloat16 autocast (for CPUs with AVX512-BF16 or
        AMX; the transformer variant only). Training and saving always use
        the float weights. `lowercase_capitals`: a window, or a line of one,
        written in capitals is read lower-cased (capitals.py; the BiLSTM
        taggers only)."""
        if max_segment_length < 1 or window_margin < 0:
            raise ValueError(
                f"max_segment_length = {max_segment_length}, window_margin = {window_margin} in "
                f"[components.{name}]: use 1 or more tokens per segment and a margin of 0 or more."
            )
        self.vocab = vocab
        self.model = model
        self.name = name
        self.scorer = scorer
        self.keep_existing_ents = keep_existing_ents
        self.max_segment_length = max_segment_length
        self.window_margin = window_margin
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
        if quantize and bfloat16:
            raise ValueError(
                f"quantize = true and bfloat16 = true in [components.{name}]: a pipeline serves in one "
                "precision. Set one of them to false (README, \"Train and use\", says what each does)."
            )
        if bfloat16 and not has_transformer(model):
            raise ValueError(
                f"bfloat16 = true in [components.{name}], but its model has no transformer: "
                "bfloat16 serving is for spacy_dtn.TransformerTransferTagger.v1. Set bfloat16 = false "
                "(quantize = true is the BiLSTM taggers' faster CPU serving)."
            )
        self.quantize = quantize
        self.bfloat16 = bfloat16
        self.lowercase_capitals = lowercase_capitals
        self.cfg = {
            "labels": [],
            "source_labels": [],
            "tag_scheme": check_tag_scheme(tag_scheme, f"[components.{name}] tag_scheme"),
            VERSION_KEY: __version__,
        }

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
        if has_tags(self.model):
            raise ValueError(
                f"Cannot add label {label!r} to the initialized component '{self.name}': "
                "its output layer is sized. Add labels before nlp.initialize()."
            )
        self.cfg["labels"] = sorted([*self.cfg["labels"], label])
        return 1

    def tag_names(self, task: str = TARGET) -> List[str]:
        labels = self.cfg["labels"] if task == TARGET else self.cfg["source_labels"]
        return make_tag_names(labels, self.cfg["tag_scheme"])

    @property
    def lowercase_capitals(self) -> bool:
        return self._lowercase_capitals

    @lowercase_capitals.setter
    def lowercase_capitals(self, value: bool) -> None:
        # The transformer variant's all-MiniLM-L6-v2 lower-cases its input itself:
        # a lower-cased copy would cost a copy and change nothing.
        self._lowercase_capitals = value and not has_transformer(self.model)

    # Prediction

    def readings(self, batch: List[Tuple[int, Window]], doc_texts: Optional[Dict[int, str]] = None) -> List[Reading]:
        """What the tagger reads of a batch's windows (reading.py). Each doc's
        text is made once and kept in `doc_texts` (by doc index) for its
        other windows, which the length-sorted batches spread out."""
        doc_texts = {} if doc_texts is None else doc_texts
        readings = []
        for i, window in batch:
            if i not in doc_texts:
                doc_texts[i] = window.span.doc.text
            readings.append(read_window(window.span, self.lowercase_capitals, doc_texts[i]))
        return readings

    def windows(self, docs: Iterable[Doc]) -> Iterator[Tuple[int, Window]]:
        """The prediction windows of each doc, with the doc's index (segments.py)."""
        for i, doc in enumerate(docs):
            for window in prediction_windows(doc, self.max_segment_length, self.window_margin):
                yield i, window

    def pipe(self, stream: Iterable[Doc], *, batch_size: int = 128) -> Iterator[Doc]:
        """TrainablePipe.pipe, with one cache of character summaries for the
        whole stream (tagger_model.prediction_cache): over an archive most word
        forms have been seen in an earlier batch."""
        with prediction_cache(self.model):
            yield from super().pipe(stream, batch_size=batch_size)

    def predict(self, docs: Iterable[Doc]) -> List[EntitySpans]:
        """Each doc's entities and their confidences. An entity never begins
        or ends on a whitespace token, as in spaCy's `ner`, which keeps
        entities from beginning on one: the corpora a model learns from
        rarely hold whitespace tokens, so what it scores there is noise, and a
        span that takes it in has offsets that match no annotation. The
        tagger reads none (reading.py) but in a window of whitespace alone
        (or of whitespace and bullets) and a token " " that a Doc built from
        words holds, and there the rule rules them out. Nor does an entity
        continue across a column break (a tab, a run of spaces or a line
        break that no editor made by wrapping a line: reading.py,
        line_wraps.py)."""
        docs = list(docs)
        found: List[EntitySpans] = [[] for _ in docs]
        names = self.tag_names(TARGET)
        edges = boundary_tags(names, self.cfg["tag_scheme"])
        continuing = continuing_tags(names, self.cfg["tag_scheme"])
        doc_texts: Dict[int, str] = {}
        for batch in self._predict_batches(self.windows(docs)):
            readings = self.readings(batch, doc_texts)
            segments = [reading.span for reading in readings]
            rules = [(whitespace_flags(segments), edges), (column_break_flags(readings), continuing)]
            outputs = forbid_tags(self.model.predict((segments, TARGET)), rules)
            paths = best_tag_paths(outputs)
            kept = [self._kept_spans(window, reading, path, names) for (_, window), reading, path in zip(batch, readings, paths)]
            for (i, _), reading, spans, scores in zip(batch, readings, kept, self._confidences(outputs, kept, names)):
                for (s, e, label), score in zip(spans, scores):
                    found[i].append((*reading.doc_span(s, _end_before_space(reading.span, s, e)), label, score))
        return [_without_overlaps(spans) for spans in found]

    def _kept_spans(self, window: Window, reading: Reading, path: List[int], names: List[str]) -> List[Tuple[int, int, str]]:
        """The entities of the tag path of a window's reading (in the tokens
        read) that the window keeps. Most windows of clinical text have none:
        an all-"O" path (tag id 0, see make_tag_names) is skipped without
        turning its ids into tag strings."""
        if not any(path):
            return []
        spans = spans_from_tags([names[t] for t in path], self.cfg["tag_scheme"])
        return [span for span in spans if window.keeps(reading.doc_index(span[0]))]

    def _confidences(self, outputs: TaggerOutput, spans: List[List[Tuple[int, int, str]]], names: List[str]) -> List[List[Optional[float]]]:
        """Each entity's CRF probability in its window; None everywhere when
        confidence is off (then nothing is computed)."""
        if not self.confidence:
            return [[None] * len(row) for row in spans]
        return entity_confidences(outputs, spans, names, self.cfg["tag_scheme"], self.confidence_temperature)

    def _predict_batches(self, indexed: Iterable[Tuple[int, Window]]) -> Iterator[List[Tuple[int, Window]]]:
        """Group windows into forward passes of at most PREDICT_BATCH_TOKENS
        padded tokens (at least one window per pass). Windows go in order of
        length, so a pass holds windows of about one length: little padding,
        fewer passes, and the BiLSTMs step through fewer positions. Each
        window keeps its doc index, so the order does not reach the docs."""
        budget = max(PREDICT_BATCH_TOKENS, self.max_segment_length)
        batch: List[Tuple[int, Window]] = []
        longest = 0
        for item in sorted(indexed, key=lambda item: len(item[1].span)):
            length = len(item[1].span)
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
            loss, d_outputs = tagging_loss(outputs, gold)
            backprop(d_outputs)
            losses[self.name] += loss
        if sgd is not None:
            self.finish_update(sgd)
        return losses

    def finish_update(self, sgd: Optimizer) -> None:
        step_optimizer(self.model, sgd)

    def use_params(self, params: dict) -> Iterator[None]:
        """TrainablePipe.use_params, for the torch weights too (a generator,
        not a context manager: Language.use_params steps it itself)."""
        with self.model.use_params(params), torch_params_in_use(self.model, params):
            yield

    def get_loss(self, examples: Iterable[Example], scores: TaggerOutput) -> Tuple[float, Tuple]:
        segments, gold = self._gold_segments(list(examples), TARGET)
        return tagging_loss(scores, gold)

    def _gold_segments(self, examples: Sequence[Example], task: str) -> Tuple[List[Span], List[List[int]]]:
        """What the tagger reads of segments of the predicted docs (reading.py),
        never cutting a gold entity, with their gold tag ids. Segments with
        missing or misaligned annotation carry no signal for a CRF, so they
        are left out of the loss."""
        index = {tag: i for i, tag in enumerate(self.tag_names(task))}
        segments, gold = [], []
        for eg in examples:
            aligned = eg.get_aligned_ner()
            cuttable = lambda i: not continues_entity(aligned[i])  # noqa: E731
            doc_text = eg.predicted.text
            for segment in training_windows(eg.predicted, self.max_segment_length, cuttable):
                biluo = aligned[segment.start : segment.end]
                if any(tag is None or tag == "-" for tag in biluo):
                    continue
                reading, biluo = read_training_segment(segment, biluo, doc_text)
                tags = tags_from_biluo(biluo, self.cfg["tag_scheme"])
                unknown = sorted({t for t in tags if t not in index})
                if unknown:
                    raise ValueError(
                        f"The {task} example {eg.reference.text[:60]!r} has tags {unknown} that the "
                        f"component '{self.name}' does not know (labels: {self.labels if task == TARGET else self.source_labels}). "
                        "Initialize with data that contains every label."
                    )
                segments.append(reading.span)
                gold.append([index[t] for t in tags])
        return segments, gold

    # Initialization

    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Optional[Language] = None,
        labels: Optional[List[str]] = None,
        source_model: Optional[str] = None,
        source_component: str = "ner",
        transfer_output: bool = False,
        label_map: Dict[str, str] = {},
        map_labels_by_overlap: Optional[float] = None,
    ) -> None:
        """Learn the label sets and build the tagger. With `source_model` (the
        path of a pipeline trained with configs/source.cfg) the copies the
        source task reads start from that pipeline's weights (sequential);
        with `transfer_output` the target's output rows for labels the source
        has too (by name, or by `label_map` from source to target label) start
        from the source's (source_weights.py). `map_labels_by_overlap` (an entity
        F1, 0..1) adds to `label_map` the differently named pairs the source's
        predictions on the target's training texts show (label_matching.py;
        `spacy train --verbose` logs them). The defaults (off) train old configs
        as before."""
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
        if source is not None and transfer_output:
            target_examples = (eg for eg in get_examples() if example_task(eg) == TARGET)
            found_map = labels_by_overlap(
                source, target_examples, target_labels, label_map, map_labels_by_overlap,
                f"[initialize.components.{self.name}]",
            )
            if found_map:
                util.logger.info("'%s' maps source to target labels by overlap: %s", self.name, found_map)
            label_map = {**label_map, **found_map}
        rows = self._output_rows(source_labels, target_labels, label_map, sequential=source is not None)
        self.cfg["labels"] = target_labels
        self.cfg["source_labels"] = source_labels
        self._build_model()
        if source is not None:
            copy_source_weights(self.model, source.model, source_model, self.name, rows if transfer_output else {})
        if self.freeze_shared:
            freeze_shared_copies(self.model)

    def _output_rows(
        self, source_labels: List[str], target_labels: List[str], label_map: Dict[str, str], sequential: bool
    ) -> Dict[int, int]:
        """The output rows the target may start from the source's (checks the label map)."""
        where = f"[initialize.components.{self.name}]"
        if label_map and not sequential:
            raise ValueError(
                f"label_map is set in {where} but source_model is not: the map says which "
                "source output rows start the target's, so it needs a source pipeline (sequential transfer)."
            )
        if not sequential:
            return {}
        return common_tag_rows(source_labels, target_labels, label_map, self.cfg["tag_scheme"], where)

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

    def _build_model(self, loading: bool = False) -> None:
        """Build the tagger for the labels in cfg; `loading`: its saved weights
        are read next, so it is built with shapes only (tagger_model.initialize_for_loading)."""
        tasks = [TARGET, SOURCE] if self.cfg["source_labels"] else [TARGET]
        set_tags(self.model, TagSet(self.cfg["tag_scheme"], {task: self.tag_names(task) for task in tasks}))
        set_static_vectors(self.model, self.vocab.vectors)
        if loading:
            initialize_for_loading(self.model)
        else:
            self.model.initialize()

    # Gate read-out and scoring

    def gate_values(self, docs: Iterable[Doc]) -> Dict[str, float]:
        """How much of each layer the target takes from the shared copy: the
        mean gate over the docs' tokens for gated layers, 1 for shared layers
        and 0 for private ones. Reads the gates of the prediction passes."""
        plan = built_plan(self.model)
        sums: Dict[str, List[float]] = defaultdict(lambda: [0.0, 0.0])
        # Without a gated layer every value is fixed: no forward pass needed.
        if GATED in plan.values():
            for batch in self._predict_batches(self.windows(docs)):
                with uncached_prediction(self.model):
                    outputs = self.model.predict(([r.span for r in self.readings(batch)], TARGET))
                for layer, (total, count) in gate_totals(outputs).items():
                    sums[layer][0] += total
                    sums[layer][1] += count
        fixed = {SHARED: 1.0}
        return {
            layer: sums[layer][0] / max(sums[layer][1], 1) if mode == GATED else fixed.get(mode, 0.0)
            for layer, mode in plan.items()
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
        check_saved_folder(path, self.name, exclude)
        deserialize = {
            "cfg": lambda p: self._set_cfg(p.read_text(encoding="utf8"), str(p)),
            "vocab": lambda p: self.vocab.from_disk(p, exclude=exclude),
            "model": lambda p: self._load_weights(p.read_bytes(), str(p)),
        }
        util.from_disk(path, deserialize, exclude)
        return self

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = tuple()) -> "DynamicTransferNER":
        where = f"the bytes of component '{self.name}'"
        deserialize = {
            "cfg": lambda b: self._set_cfg(b, f"the cfg in {where}"),
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

    def _set_cfg(self, text: Union[str, bytes], where: str) -> None:
        self.cfg.update(parse_saved_cfg(text, where))
        self.cfg[VERSION_KEY] = __version__

    def _load_weights(self, data: bytes, where: str) -> None:
        self._build_model(loading=True)
        try:
            self.model.from_bytes(data)
        except pickle.UnpicklingError as err:
            raise SavedModelError(
                f"Refused to load the weights of '{self.name}' from {where}: the torch state holds "
                f"objects other than tensors ({unpickling_reason(err)}). Loading never unpickles arbitrary objects; "
                "a file saved by spacy-dtn holds only tensors, so this one was altered or is not "
                "from spacy-dtn. Do not use it; re-save or retrain the pipeline."
            ) from None
        except (ValueError, KeyError, RuntimeError, EOFError, TypeError, IndexError) as err:
            raise SavedModelError(
                f"Could not load the weights of '{self.name}' from {where}: {err}. The file is "
                "truncated or corrupt, or was saved with other labels or settings than its "
                "cfg and config.cfg say; re-save or retrain the pipeline."
            ) from None
        if self.quantize:
            serve_quantized(self.model)
        if self.bfloat16:
            serve_bfloat16(self.model)


def _end_before_space(segment: Span, start: int, end: int) -> int:
    """The end of a decoded entity segment[start:end] without its trailing
    whitespace tokens, which only BIO (no end tag to forbid there) decodes.
    Its confidence is that of the span as decoded: the span without them is
    a path the decoder did not take. The first token is never whitespace:
    no tag that begins an entity may go there."""
    while end - start > 1 and segment[end - 1].is_space:
        end -= 1
    return end


def _without_overlaps(spans: EntitySpans) -> EntitySpans:
    """The spans in order; where overlapping windows disagree, the earlier span wins."""
    kept: EntitySpans = []
    for span in sorted(spans, key=lambda span: span[:3]):
        if not kept or span[0] >= kept[-1][1]:
            kept.append(span)
    return kept
