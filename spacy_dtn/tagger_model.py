"""Thinc architectures: the torch tagger wrapped for spaCy, and what the
component asks of it (decoding, the loss, gate read-out, the optimiser step).

A tagger model is two refs: "features" turns segments into arrays (hashed
words and characters here, transformer vectors in transformer_model.py) and
"torch" is the wrapped TransferTagger. The torch module's size depends on the
label sets, which the component only learns in `initialize`, so the wrapper
starts with an empty module and `init` builds the real one from the TagSet
given by `set_tags`. The component never touches tensors: it passes the
model's output back to the functions here.
"""
import math
import os
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy
import torch
from spacy.attrs import IDS, ORTH
from spacy.tokens import Span
from spacy.vectors import Vectors
from spacy.util import registry
from thinc.api import (
    ArgsKwargs, Model, NumpyOps, Optimizer, PyTorchWrapper_v3, get_torch_default_device, torch2xp, xp2torch,
)
from thinc.shims.pytorch import PyTorchShim
from thinc.types import ArrayXd

from .plan import PRIVATE, SOURCE, TARGET, LayerPlan, make_plan, shared_copy_prefixes, single_task
from .pytorch_crf import CRFScores, crf_loss, viterbi_decode
from .pytorch_serving import FormCache, bfloat16_autocast, quantized_copy
from .pytorch_tagger import GATE_PARAMETERS, CharWordTagger, Constraints, GateSums, TransferTagger
from .tag_scheme import allowed_transitions

# The key of the TaggerSettings in a hashed-feature tagger's attrs.
SETTINGS_ATTR = "settings"

# nlp.pipe(n_process=...) forks. torch's OpenMP thread pool does not survive a
# fork and the child's first parallel op deadlocks; one thread per worker
# process is also what multiprocess serving wants.
os.register_at_fork(after_in_child=lambda: torch.set_num_threads(1))

TaggerInput = Tuple[List[Span], str]
# The task's CRF scores and, in prediction, the gate sums of the target path.
TaggerOutput = Tuple[CRFScores, GateSums]
Features = Dict[str, ArrayXd]
# (model, plan, tag counts per task, tag constraints per task) -> torch module
ModuleMaker = Callable[[Model, LayerPlan, Mapping[str, int], Mapping[str, Constraints]], TransferTagger]
MAX_HASHES = 4  # Thinc's ops.hash gives four independent 32-bit hashes per key.
HOST_OPS = NumpyOps()  # hashes word features on the host, on CPU and GPU alike (_hashed_rows)
# Token attributes the word embedding may hash (spaCy's MultiHashEmbed's choice).
WORD_FEATURES = ("NORM", "LOWER", "ORTH", "PREFIX", "SUFFIX", "SHAPE")
# A sublayer with this attr (and everything under it) steps at that fraction
# of the optimizer's learning rate.
LEARN_RATE_SCALE = "learn_rate_scale"
# model.attrs keys, read and written only through the functions below.
TRANSFER_ATTR = "transfer"
TAGS_ATTR = "tags"
# The torch shims' attribute holding a quantized copy that predicts instead of
# the float module (serve_quantized); not a model attr, so never serialized.
SERVING_COPY = "dtn_serving_copy"
# The pipeline's static vectors (spacy.vectors.Vectors), absent without: a
# reference to nlp.vocab's, which Thinc leaves out of the saved model.
VECTORS_ATTR = "static_vectors"
# Set by `initialize_for_loading`: `init` builds the char/word torch module on
# torch's meta device (shapes, no memory), because saved weights replace it.
_BUILD_WITHOUT_WEIGHTS: ContextVar[bool] = ContextVar("dtn_build_without_weights", default=False)


@registry.misc("spacy_dtn.TaggerSettings.v1")
@dataclass(frozen=True)
class TaggerSettings:
    """Sizes and regularisation of the BiLSTM-CRF, the same for every copy."""

    char_rows: int = 1000
    char_width: int = 25
    char_hidden: int = 25
    max_word_length: int = 24
    word_rows: int = 50000
    word_width: int = 100
    word_hashes: int = 2
    # The word (first) and any spelling features, each hashed into the same
    # table and summed: the first takes `word_hashes` rows, every further one a
    # single row. PREFIX, SUFFIX and SHAPE give a word unseen in a small
    # target the rows of seen words that begin, end or look like it.
    word_features: Sequence[str] = ("NORM",)
    word_hidden: int = 100
    dropout: float = 0.5
    # With the pipeline's static vectors ([initialize.vectors]): train them
    # along (each word_embed copy its own) or keep them as loaded (one table).
    fine_tune_vectors: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.word_hashes <= MAX_HASHES:
            raise ValueError(
                f"word_hashes = {self.word_hashes} in the tagger settings: use 1 to {MAX_HASHES}."
            )
        features = tuple(self.word_features)
        if not features or len(set(features)) < len(features) or not set(features) <= set(WORD_FEATURES):
            raise ValueError(
                f"word_features = {list(self.word_features)} in the tagger settings: name each "
                f"of {list(WORD_FEATURES)} at most once, the word itself first (it takes `word_hashes` rows)."
            )
        object.__setattr__(self, "word_features", features)
        if self.max_word_length < 2:
            raise ValueError(
                f"max_word_length = {self.max_word_length} in the tagger settings: use 2 or more."
            )


@registry.misc("spacy_dtn.TaggerSettings.v2")
@dataclass(frozen=True)
class TaggerSettingsV2(TaggerSettings):
    """TaggerSettings.v1 with the shipped configs' word features as default, for
    dtn_ner's default model. A new name because spaCy fills a saved pipeline's
    config from the factory's default model where both name the same function:
    under v1, pipelines saved before `word_features` existed would load hashing
    features they were never trained with."""

    word_features: Sequence[str] = ("NORM", "PREFIX", "SUFFIX", "SHAPE")


@dataclass(frozen=True)
class TransferSpec:
    """How the architecture shares its layers: the plan, how gates start, and
    how fast the gates and the shared copies move (multiples of the
    optimizer's learning rate)."""

    plan: LayerPlan
    gate: str
    gate_bias: float
    gate_learn_rate_scale: float = 1.0
    shared_learn_rate_scale: float = 1.0


@dataclass(frozen=True)
class TagSet:
    """The tag names per task and their scheme: known once the component has
    seen its labels, and what sizes the output layers."""

    scheme: str
    names: Dict[str, List[str]] = field(default_factory=dict)


@registry.architectures("spacy_dtn.BiLSTMTransferTagger.v1")
def build_bilstm_transfer_tagger(
    settings: TaggerSettings,
    shared: List[str] = [],
    gated: List[str] = [],
    gate: str = "dynamic",
    gate_bias: float = 2.0,
    gate_learn_rate_scale: float = 1.0,
) -> Model[TaggerInput, TaggerOutput]:
    """The character/word BiLSTM-CRF. `shared` layers are one copy for both
    tasks, `gated` ones a shared and a target-private copy mixed by a gate
    (DTN) that starts at sigmoid(gate_bias) shared and steps at
    gate_learn_rate_scale times the learning rate; the rest are private.
    Trained without a source every layer is the target's own (the baseline
    and the source model)."""
    return build_bilstm_transfer_tagger_v2(settings, shared, gated, gate, gate_bias, gate_learn_rate_scale)


@registry.architectures("spacy_dtn.BiLSTMTransferTagger.v2")
def build_bilstm_transfer_tagger_v2(
    settings: TaggerSettings,
    shared: List[str] = [],
    gated: List[str] = [],
    gate: str = "dynamic",
    gate_bias: float = 2.0,
    gate_learn_rate_scale: float = 1.0,
    shared_learn_rate_scale: float = 1.0,
) -> Model[TaggerInput, TaggerOutput]:
    """v1, whose shared copies (the source model's weights in sequential
    transfer) also step at shared_learn_rate_scale times the learning rate.
    A new name, not a new v1 setting: spaCy writes every setting of the
    function into a filled config, so the shipped v1 configs (and the
    benchmark records keyed by their digest) stay as they are."""
    spec = TransferSpec(make_plan(shared=shared, gated=gated), gate, gate_bias,
                        check_learn_rate_scale(gate_learn_rate_scale, "gate_learn_rate_scale"),
                        check_learn_rate_scale(shared_learn_rate_scale, "shared_learn_rate_scale"))
    return build_transfer_model(None, _make_char_word_tagger, spec, attrs={SETTINGS_ATTR: settings})


# The names of 0.1: one architecture per sharing variant. Kept so that
# pipelines and configs written with them load and train as before.
@registry.architectures("spacy_dtn.HierarchicalTagger.v1")
def build_hierarchical_tagger(settings: TaggerSettings) -> Model[TaggerInput, TaggerOutput]:
    """Superseded by BiLSTMTransferTagger.v1 with nothing shared or gated."""
    return build_bilstm_transfer_tagger(settings, gate="scalar", gate_bias=0.0)


@registry.architectures("spacy_dtn.SharedTransferTagger.v1")
def build_shared_transfer_tagger(
    shared: List[str], settings: TaggerSettings
) -> Model[TaggerInput, TaggerOutput]:
    """Superseded by BiLSTMTransferTagger.v1 with `shared` set."""
    return build_bilstm_transfer_tagger(settings, shared=shared, gate="scalar", gate_bias=0.0)


@registry.architectures("spacy_dtn.DynamicTransferTagger.v1")
def build_dynamic_transfer_tagger(
    gated: List[str],
    settings: TaggerSettings,
    gate: str = "dynamic",
    shared: List[str] = [],
    gate_bias: float = 0.0,
) -> Model[TaggerInput, TaggerOutput]:
    """Superseded by BiLSTMTransferTagger.v1 (whose gate_bias defaults to the tuned 2.0)."""
    return build_bilstm_transfer_tagger(settings, shared=shared, gated=gated, gate=gate, gate_bias=gate_bias)


def build_transfer_model(
    features: Optional[Model[List[Span], Features]],
    make_module: ModuleMaker,
    spec: TransferSpec,
    *,
    attrs: Mapping[str, Any] = {},
) -> Model[TaggerInput, TaggerOutput]:
    """`features`: a model from segments to feature arrays, with weights (a
    transformer); None for the char/word features, computed by `featurize`
    from attrs[SETTINGS_ATTR] (no weights, so nothing to add to the layer tree,
    whose shape is the saved format)."""
    # v3 (same saved format as v2) takes the deserializer: weights only, no pickled objects.
    wrapper = PyTorchWrapper_v3(
        torch.nn.Module(),
        convert_inputs=_convert_inputs,
        convert_outputs=_convert_outputs,
        deserialize_model=deserialize_torch_state,
    )

    def init(model: Model, X: Any = None, Y: Any = None) -> None:
        _init(model, make_module)

    return Model(
        "dtn_tagger",
        _forward,
        init=init,
        layers=[wrapper] if features is None else [features, wrapper],
        attrs={TRANSFER_ATTR: spec, TAGS_ATTR: None, **attrs},
        refs={"torch": wrapper} if features is None else {"torch": wrapper, "features": features},
    )


def check_learn_rate_scale(scale: float, setting: str) -> float:
    """The architecture's learning-rate multiple `setting`, if it is usable."""
    if not math.isfinite(scale) or scale <= 0:
        raise ValueError(
            f"{setting} = {scale} in the architecture: use a positive, finite multiple of the "
            "learning rate (1 = these weights step as every other weight)."
        )
    return scale


def transfer_spec(model: Model) -> TransferSpec:
    return model.attrs[TRANSFER_ATTR]


def set_tags(model: Model, tags: TagSet) -> None:
    """Give the model its tag names before `initialize` builds the torch module."""
    if TARGET not in tags.names:
        raise ValueError("The tagger needs the target tag names before initialize.")
    model.attrs[TAGS_ATTR] = tags


def set_static_vectors(model: Model, vectors: Vectors) -> None:
    """Give the model the pipeline's static vectors before `initialize` (and
    before loading weights): every word_embed copy reads them; an empty
    table means none, and the model is built (and saved) as without vectors."""
    if vectors.shape[0]:
        model.attrs[VECTORS_ATTR] = vectors
    else:
        model.attrs.pop(VECTORS_ATTR, None)


def has_tags(model: Model) -> bool:
    return model.attrs[TAGS_ATTR] is not None


def deserialize_torch_state(module: torch.nn.Module, state_bytes: bytes, device: "torch.device") -> torch.nn.Module:
    """Load saved parameters without unpickling arbitrary objects.

    Thinc's default calls `torch.load` without `weights_only`, which on torch
    before 2.6 (or with TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD set) runs whatever a
    pickle in a model file asks for. A state dict needs only tensors, so
    anything else fails here with `pickle.UnpicklingError`.

    The loaded tensors become the module's (`assign`): the module may have
    been built without memory (`initialize_for_loading`), and no second copy
    of the weights is made.
    """
    state = torch.load(BytesIO(state_bytes), map_location=device, weights_only=True)
    module.load_state_dict(state, assign=True)
    module.to(device)
    return module


def initialize_for_loading(model: Model) -> None:
    """`model.initialize()` for a model whose saved weights are loaded next:
    the char/word torch module is built with shapes only (torch's meta
    device), so loading holds one copy of the weights instead of a random
    one and the loaded one. A transformer model builds as usual (its
    features layer loads its own way)."""
    token = _BUILD_WITHOUT_WEIGHTS.set(not model.has_ref("features"))
    try:
        model.initialize()
    finally:
        _BUILD_WITHOUT_WEIGHTS.reset(token)


def get_torch_module(model: Model) -> TransferTagger:
    module = model.get_ref("torch").shims[0]._model
    if not isinstance(module, TransferTagger):
        raise ValueError("The tagger model is not initialized: call nlp.initialize() first.")
    return module


def _init(model: Model, make_module: ModuleMaker) -> None:
    tags: Optional[TagSet] = model.attrs[TAGS_ATTR]
    if tags is None:
        raise ValueError("The tagger needs the target tag names before initialize.")
    spec = transfer_spec(model)
    names, plan = tags.names, dict(spec.plan)
    if SOURCE not in names:
        plan = single_task(plan)
    elif plan["output"] != PRIVATE and names[SOURCE] != names[TARGET]:
        raise ValueError(
            f"The architecture {plan['output']} the `output` layer, but source and target "
            f"have different tags: source {names[SOURCE]}, target {names[TARGET]}. "
            "Remove 'output' from the architecture's `shared`/`gated` list."
        )
    constraints = {
        task: tuple(torch.from_numpy(m) for m in allowed_transitions(task_names, tags.scheme))
        for task, task_names in names.items()
    }
    if model.has_ref("features"):
        model.get_ref("features").initialize()
    empty = _BUILD_WITHOUT_WEIGHTS.get()
    with torch.device("meta") if empty else nullcontext():
        module = make_module(model, plan, {task: len(task_names) for task, task_names in names.items()}, constraints)
    module.start_gates_at(spec.gate_bias)
    shim: PyTorchShim = model.get_ref("torch").shims[0]
    # A module built empty moves to the device with the weights that fill it.
    shim._model = module if empty else module.to(get_torch_default_device())
    for replaced in torch_shims(model):  # copies of the modules initialize replaced
        replaced.__dict__.pop(SERVING_COPY, None)


def _make_char_word_tagger(
    model: Model, plan: LayerPlan, tag_counts: Mapping[str, int], constraints: Mapping[str, Constraints]
) -> TransferTagger:
    settings: TaggerSettings = model.attrs[SETTINGS_ATTR]
    return CharWordTagger(
        plan,
        tag_counts,
        constraints,
        char_rows=settings.char_rows,
        char_width=settings.char_width,
        char_hidden=settings.char_hidden,
        word_rows=settings.word_rows,
        word_width=settings.word_width,
        word_hidden=settings.word_hidden,
        dropout=settings.dropout,
        gate=transfer_spec(model).gate,
        vectors=_vector_table(model),
        fine_tune_vectors=settings.fine_tune_vectors,
    )


def _vector_table(model: Model) -> Optional[torch.Tensor]:
    """The static vectors as the word embedding reads them: row 0 (zeros) for
    words without a vector, then the pipeline's rows."""
    vectors: Optional[Vectors] = model.attrs.get(VECTORS_ATTR)
    if vectors is None:
        return None
    if vectors.mode != "default":
        raise ValueError(
            f"The pipeline's static vectors are in {vectors.mode!r} mode: the dtn_ner word "
            "embedding reads a table of rows ('default' mode). Build the vectors without floret, "
            "or set [initialize] vectors = null."
        )
    rows = torch.from_numpy(model.ops.to_numpy(vectors.data)).float()
    # On the CPU even while the module is built with shapes only: a frozen
    # table is not among the saved weights that fill the module.
    return torch.cat([torch.zeros(1, rows.shape[1], device=rows.device), rows])


def _forward(model: Model, X: TaggerInput, is_train: bool) -> Tuple[TaggerOutput, Callable]:
    segments, task = X
    with _serving_copies(model, is_train):
        features, backprop_features = _compute_features(model, segments, is_train)
        outputs, backprop_tagger = model.get_ref("torch")((features, task), is_train)

    def backprop(d_scores: CRFScores) -> TaggerInput:
        return backprop_features(backprop_tagger(d_scores)), task

    return outputs, backprop


@contextmanager
def torch_params_in_use(model: Model, params: Mapping) -> Iterator[None]:
    """Within the block, the torch modules' weights are those in `params` (an
    optimizer's averages: `use_averages = true`), keyed as the optimiser
    steps them, (shim id, parameter name); after it, the trained weights
    again. Thinc's PyTorchShim.use_params looks them up under other keys and
    finds none, so without this spaCy would evaluate and save the last step's
    weights, not the averages it was asked for."""
    swapped = []
    try:
        for shim in torch_shims(model):
            for name, param in shim._model.named_parameters():
                average = params.get((shim.id, name))
                if average is not None:
                    swapped.append((param, param.data))
                    param.data = xp2torch(average, device=param.device).clone()
        yield
    finally:
        for param, trained in swapped:
            param.data = trained


@contextmanager
def prediction_cache(model: Model) -> Iterator[None]:
    """Within the block, predictions of a character-level tagger look up the
    character summaries of word forms seen earlier in the block instead of
    recomputing them (pytorch_serving.FormCache): one cache per prediction
    stream, for the module that predicts (a quantized serving copy has its
    own, its summaries differ). Predictions are those of the uncached path up
    to float rounding. A cached pass computes no gate sums (its character
    layers run on new forms only): read gates under `uncached_prediction`.
    A training pass inside the block drops the cache."""
    with _form_caches(model, FormCache):
        yield


@contextmanager
def uncached_prediction(model: Model) -> Iterator[None]:
    """Within the block, every pass runs every layer on all of its input,
    even inside a stream's `prediction_cache` (e.g. an `nlp.pipe` generator
    its consumer stopped reading before its end): what the gate read-out needs."""
    with _form_caches(model, lambda: None):
        yield


@contextmanager
def _form_caches(model: Model, make: Callable[[], Optional[FormCache]]) -> Iterator[None]:
    modules = [module for shim in torch_shims(model)
               for module in (shim._model, shim.__dict__.get(SERVING_COPY)) if hasattr(module, "form_cache")]
    outer = [module.form_cache for module in modules]  # restored after: blocks nest
    for module in modules:
        module.form_cache = make()
    try:
        yield
    finally:
        for module, cache in zip(modules, outer):
            module.form_cache = cache


def serve_quantized(model: Model) -> None:
    """Predict from now on with int8 copies of the torch modules (the tagger's
    and a transformer's; CPU serving, pytorch_serving.py). The float modules
    stay the model: they train and are saved, and a training pass drops the
    copies, which would go stale."""
    for shim in torch_shims(model):
        setattr(shim, SERVING_COPY, quantized_copy(shim._model))


def serve_bfloat16(model: Model) -> None:
    """Predict from now on with the token-vector encoder (a transformer) under
    bfloat16 autocast (pytorch_serving.bfloat16_autocast); the tagger above it
    stays float32, as its CRF scores need. A model without such an encoder
    (the BiLSTM taggers) is left as it is: the component refuses the setting."""
    for shim in encoder_shims(model):
        setattr(shim, SERVING_COPY, bfloat16_autocast(shim._model))


def encoder_shims(model: Model) -> List[PyTorchShim]:
    """The torch shims of the token-vector encoder (the "features" ref: a
    transformer's); none for the BiLSTM taggers, whose features are arrays."""
    return torch_shims(model.get_ref("features")) if model.has_ref("features") else []


def torch_shims(model: Model) -> List[PyTorchShim]:
    """Every PyTorch shim in the model (the tagger's, and a transformer's: HFShim is one)."""
    return [shim for node in model.walk() for shim in node.shims if isinstance(shim, PyTorchShim)]


@contextmanager
def _serving_copies(model: Model, is_train: bool) -> Iterator[None]:
    """In prediction, each shim with a serving copy runs the copy instead of its module."""
    shims = [shim for shim in torch_shims(model) if SERVING_COPY in shim.__dict__]
    if is_train:
        for shim in shims:
            del shim.__dict__[SERVING_COPY]
        shims = []
    modules = [shim._model for shim in shims]
    try:
        for shim in shims:
            shim._model = shim.__dict__[SERVING_COPY]
        yield
    finally:
        for shim, module in zip(shims, modules):
            shim._model = module


def _compute_features(model: Model, segments: List[Span], is_train: bool) -> Tuple[Features, Callable]:
    """The torch module's inputs for the segments, and their backprop."""
    if model.has_ref("features"):
        return model.get_ref("features")(segments, is_train)
    features = featurize(segments, model.attrs[SETTINGS_ATTR])
    if model.attrs.get(VECTORS_ATTR) is not None:
        features["vector_ids"] = vector_rows(segments, model.attrs[VECTORS_ATTR])
    return features, lambda d_features: segments


def vector_rows(segments: Sequence[Span], vectors: Vectors) -> numpy.ndarray:
    """Per token, 1 + its row in the static vectors (by ORTH, as spaCy's
    StaticVectors), 0 where it has none or is padding."""
    lengths = numpy.array([len(s) for s in segments], dtype="int64")
    orths = _token_ids(segments)[:, 0]  # one to_array per doc, as featurize: no loop per token
    found = numpy.asarray(vectors.find(keys=orths), dtype="int64") + 1 if len(orths) else orths.astype("int64")
    rows = numpy.zeros((len(segments), int(lengths.max(initial=1))), dtype="int64")
    rows[numpy.arange(rows.shape[1]) < lengths[:, None]] = found
    return rows


def featurize(segments: Sequence[Span], settings: TaggerSettings) -> Dict[str, numpy.ndarray]:
    """Hashed word rows per token and per distinct word (its tuple of
    `word_features`), and character rows per unique word form.

    The character BiLSTM is the CPU bottleneck, so it runs once per distinct
    word of the batch and `token_unique` scatters its outputs back; in
    prediction the word embedding also runs once per distinct word
    (`distinct_word_ids`, placed by `token_word`). Python loops run per
    segment and per distinct word, never per token: spaCy's `to_array` gives
    the token ids and numpy places them.
    """
    lengths = numpy.array([len(s) for s in segments], dtype="int64")
    batch, width = len(segments), int(lengths.max(initial=1))
    ids = _token_ids(segments, settings.word_features)
    words, token_word_ids = _distinct_rows(ids[:, 1:])
    hashed = _hashed_rows(words, settings)
    real = numpy.arange(width) < lengths[:, None]  # row-major order of `real` is token order
    word_ids = numpy.zeros((batch, width, hashed.shape[1]), dtype="int64")
    word_ids[real] = hashed[token_word_ids]
    token_word = numpy.zeros((batch, width), dtype="int64")
    token_word[real] = token_word_ids
    forms, form_keys, token_form = _word_forms(ids[:, 0], segments, settings.max_word_length)
    token_unique = numpy.zeros((batch, width), dtype="int64")
    token_unique[real] = token_form
    chars, char_lengths = _char_rows(forms, settings.char_rows)
    return {
        "word_ids": word_ids,
        "distinct_word_ids": hashed,
        "token_word": token_word,
        "lengths": lengths,
        "chars": chars,
        "char_lengths": char_lengths,
        "form_keys": form_keys,
        "token_unique": token_unique,
    }


def _distinct_rows(keys: numpy.ndarray) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """The distinct rows of `keys` (tokens, features) in sorted order, and each
    token's row. Column by column with numpy's 1-D unique, each step numbering
    the distinct (rows so far, next column) pairs: three times faster than
    `numpy.unique(axis=0)`, and one unique for a single column."""
    _, inverse = numpy.unique(keys[:, 0], return_inverse=True)
    for column in keys[:, 1:].T:
        values, codes = numpy.unique(column, return_inverse=True)
        _, inverse = numpy.unique(inverse * len(values) + codes, return_inverse=True)
    inverse = inverse.reshape(-1)
    distinct = numpy.zeros((int(inverse.max(initial=-1)) + 1, keys.shape[1]), dtype=keys.dtype)
    distinct[inverse] = keys
    return distinct, inverse


def _hashed_rows(words: numpy.ndarray, settings: TaggerSettings) -> numpy.ndarray:
    """Table rows (words, hashes) for each distinct word's feature ids (words,
    features): `word_hashes` for the first feature, one for each further one,
    hashed with the feature's own seed so that equal strings of two features
    (PREFIX "a", NORM "a") take different rows. Row 0 is padding.
    Hashed on the host (HOST_OPS) whatever the model's ops: the features are
    numpy arrays, and a pipeline trained on a GPU must find the same rows on a CPU."""
    keys = numpy.ascontiguousarray(words.T)  # ops.hash reads contiguous keys
    hashes = [HOST_OPS.hash(column, seed) for seed, column in enumerate(keys)]
    hashed = numpy.concatenate([hashes[0][:, : settings.word_hashes]] + [h[:, :1] for h in hashes[1:]], axis=1)
    hashed = hashed.astype("int64")
    return hashed % (settings.word_rows - 1) + 1


def _token_ids(segments: Sequence[Span], features: Sequence[str] = ()) -> numpy.ndarray:
    """ORTH and the `features` of every token (tokens, 1 + features), in
    order: one `to_array` per doc."""
    attrs = [ORTH] + [IDS[name] for name in features]
    arrays: Dict[int, numpy.ndarray] = {}
    parts = [numpy.zeros((0, len(attrs)), dtype="uint64")]
    for segment in segments:
        doc = segment.doc
        if id(doc) not in arrays:
            arrays[id(doc)] = doc.to_array(attrs).reshape(-1, len(attrs))
        parts.append(arrays[id(doc)][segment.start : segment.end])
    return numpy.concatenate(parts)


def _word_forms(
    orths: numpy.ndarray, segments: Sequence[Span], limit: int
) -> Tuple[List[str], numpy.ndarray, numpy.ndarray]:
    """The distinct clipped word forms in order of first occurrence, a key per
    form (the ORTH of its first token, as int64: FormCache's key), and each
    token's form index."""
    distinct, first, inverse = numpy.unique(orths, return_index=True, return_inverse=True)
    order = numpy.argsort(first)
    ordered = distinct[order]  # the batch's ORTHs in order of first occurrence
    strings = segments[0].doc.vocab.strings if len(distinct) else {}
    forms: Dict[str, int] = {}
    # One comprehension over Python ints, no numpy access per ORTH: it runs
    # for every distinct word of every batch.
    ids = [forms.setdefault(_clip(strings[key], limit), len(forms)) for key in ordered.tolist()]
    form_ids = numpy.array(ids, dtype="int64")
    form_of = numpy.zeros(len(distinct), dtype="int64")
    form_of[order] = form_ids
    # Form ids count up in order of first occurrence: a form's first ORTH is its key.
    form_keys = ordered[numpy.unique(form_ids, return_index=True)[1]].view("int64")
    return list(forms), form_keys, form_of[inverse.reshape(-1)]


def _char_rows(forms: List[str], char_rows: int) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """Character rows (forms, longest form) hashed by code point (row 0 is padding), and the forms' lengths."""
    char_lengths = numpy.array([len(f) for f in forms], dtype="int64")
    chars = numpy.zeros((len(forms), int(char_lengths.max(initial=1))), dtype="int64")
    # UTF-32: one code point (what ord gives) per character.
    codes = numpy.frombuffer("".join(forms).encode("utf-32-le"), dtype="<u4").astype("int64")
    chars[numpy.arange(chars.shape[1]) < char_lengths[:, None]] = codes % (char_rows - 1) + 1
    return chars, char_lengths


def _clip(text: str, limit: int) -> str:
    """Keep prefix and suffix of very long tokens: they carry the morphology."""
    if len(text) <= limit:
        return text
    return text[: limit // 2] + text[len(text) - (limit - limit // 2) :]


def _convert_inputs(model: Model, X: Tuple[Features, str], is_train: bool):
    """Float features (transformer vectors) get gradients; ids and lengths do not."""
    features, task = X
    device = model.shims[0].device
    tensors = {
        name: xp2torch(array, requires_grad=is_train and array.dtype.kind == "f", device=device)
        for name, array in features.items()
    }

    def backprop(d_inputs: ArgsKwargs) -> Features:
        return {name: torch2xp(d_inputs.kwargs[name]) for name, tensor in tensors.items() if tensor.requires_grad}

    return ArgsKwargs(args=(), kwargs={**tensors, "task": task}), backprop


def _convert_outputs(model: Model, X_Ytorch: Any, is_train: bool):
    """Hand the torch outputs on unconverted: the CRF loss is computed in torch."""
    _, (scores, gate_sums) = X_Ytorch

    def backprop(d_scores: CRFScores) -> ArgsKwargs:
        pairs = [(y, dy) for y, dy in zip(scores, d_scores) if dy is not None]
        return ArgsKwargs(args=([y for y, _ in pairs],), kwargs={"grad_tensors": [dy for _, dy in pairs]})

    return (scores, gate_sums), backprop


def best_tag_paths(outputs: TaggerOutput) -> List[List[int]]:
    """The Viterbi tag ids of each segment under the constraints."""
    return viterbi_decode(*outputs[0])


def whitespace_flags(segments: Sequence[Span]) -> numpy.ndarray:
    """Whether each token of the segments, in order, is whitespace: the tagger
    reads whitespace only where a window is nothing else (reading.py), or a
    token " " that a Doc built from words holds."""
    return _token_ids(segments, ["IS_SPACE"])[:, 1].astype(bool)


def forbid_tags(outputs: TaggerOutput, rules: Sequence[Tuple[numpy.ndarray, numpy.ndarray]]) -> TaggerOutput:
    """The outputs with, for each rule (flags, tags), the `tags` (a bool per
    tag) impossible at the tokens `flags` marks (a bool per token of the
    segments, in order): their emission scores become minus infinity, so
    neither the Viterbi path nor a span marginal can use them. The outputs
    themselves where no flag is set (text without whitespace or layout)."""
    rules = [(flags, tags) for flags, tags in rules if flags.any()]
    if not rules:
        return outputs
    scores, gate_sums = outputs
    real = scores.mask.cpu().numpy()
    banned = numpy.zeros(tuple(scores.emissions.shape), dtype=bool)
    for flags, tags in rules:
        at = numpy.zeros(real.shape, dtype=bool)
        at[real] = flags  # the real positions, in token order
        banned |= at[:, :, None] & tags
    return scores._replace(emissions=scores.emissions.masked_fill(torch.from_numpy(banned).to(scores.emissions.device), float("-inf"))), gate_sums


def tagging_loss(outputs: TaggerOutput, gold: Sequence[Sequence[int]]) -> Tuple[float, CRFScores]:
    """The CRF loss of the gold tag ids, and the gradient the model's backprop takes."""
    return crf_loss(outputs[0], gold)


def gate_totals(outputs: TaggerOutput) -> Dict[str, Tuple[float, float]]:
    """(sum, count) of the gate values per gated layer in a prediction's output."""
    return {layer: (float(pair[0]), float(pair[1])) for layer, pair in outputs[1].items()}


def built_plan(model: Model) -> LayerPlan:
    """The plan of the initialized tagger (all private where it has no source task)."""
    return dict(get_torch_module(model).plan)


class ScaledOptimizer:
    """Passes parameters to an optimizer with their learning rate scaled: all
    of them, or (with `prefixes`) those whose name starts with one of them."""

    def __init__(self, optimizer: Optimizer, scale: float, prefixes: Tuple[str, ...] = ()) -> None:
        self.optimizer = optimizer
        self.scale = scale
        self.prefixes = prefixes

    def __call__(self, key: Tuple[int, str], weights: ArrayXd, gradient: ArrayXd, *, lr_scale: float = 1.0):
        scaled = not self.prefixes or str(key[1]).startswith(self.prefixes)
        return self.optimizer(key, weights, gradient, lr_scale=lr_scale * (self.scale if scaled else 1.0))


def step_tagger_shim(shim: PyTorchShim, optimizer: Callable) -> None:
    """PyTorchShim.finish_update for the tagger, except that a sparse gradient
    (a hashed word table's: a batch touches a few thousand of its rows) is
    written into a dense one kept between steps, and only its rows are
    cleared after. Torch's dense gradient of such a table is a fresh 20 MB
    tensor per table and step: allocating it cost time, and freeing it
    fragmented the heap (a long training grew 2-3 MB a step). The optimiser
    still sees the whole table, so its update is the same (no mixed
    precision: the tagger trains in float32)."""
    kept: Dict[str, torch.Tensor] = shim.__dict__.setdefault("dense_gradients", {})
    for name, param in shim._model.named_parameters():
        gradient = param.grad
        if gradient is None:
            continue
        rows = None
        if gradient.is_sparse:
            gradient = gradient.coalesce()
            rows = gradient.indices()[0]
            if name not in kept or kept[name].shape != param.shape:
                kept[name] = torch.zeros_like(param.data)
            kept[name][rows] = gradient.values()
            gradient = kept[name]
        weights, _ = optimizer((shim.id, name), torch2xp(param.data), torch2xp(gradient))
        param.data = xp2torch(weights, device=param.device)
        if rows is not None:
            gradient[rows] = 0


def step_optimizer(model: Model, optimizer: Optimizer) -> None:
    """Model.finish_update, except that sublayers marked with LEARN_RATE_SCALE
    step at that fraction of the learning rate, the gates at the
    architecture's gate_learn_rate_scale times it, the shared copies at its
    shared_learn_rate_scale times it, and torch gradients are dropped
    afterwards.

    A pretrained transformer wants a learning rate ~50x below the BiLSTM-CRF
    trained from scratch, and gradient scaling (grad_factor) cannot give
    that: Adam is scale-invariant. Thinc zeroes gradients instead of dropping
    them, and its optimiser then still moves parameters with zero gradient
    (momentum, weight decay); dropping them keeps a source batch off
    target-private copies. Adam moves a weight by about the learning rate a
    step whatever its gradient, so a gate's logit travels at most ~0.6 in
    the 200 steps before a small target's dev F1 peaks: a larger rate for the
    gates alone lets them get where the data pulls them in that time. Thinc
    scales weight decay with the rate, so with L2 > 0 the gates would also be
    pulled towards an even mix that much faster (the shipped configs: L2 = 0)."""
    scales = {
        node.id: marked.attrs[LEARN_RATE_SCALE]
        for marked in model.walk()
        if LEARN_RATE_SCALE in marked.attrs
        for node in marked.walk()
    }
    optimizers = {
        node.id: ScaledOptimizer(optimizer, scales[node.id]) if node.id in scales else optimizer
        for node in model.walk()
    }
    spec = transfer_spec(model)
    tagger = model.get_ref("torch").id
    for scale, prefixes in ((spec.gate_learn_rate_scale, GATE_PARAMETERS),
                            (spec.shared_learn_rate_scale, shared_copy_prefixes(spec.plan))):
        if scale != 1.0:
            optimizers[tagger] = ScaledOptimizer(optimizers[tagger], scale, prefixes)
    for node in model.walk():
        for shim in node.shims:
            if isinstance(shim._model, TransferTagger):
                step_tagger_shim(shim, optimizers[node.id])
            else:
                shim.finish_update(optimizers[node.id])
    for node in model.walk():
        for name in node.param_names:
            if node.has_grad(name):
                param, _ = optimizers[node.id]((node.id, name), node.get_param(name), node.get_grad(name))
                node.set_param(name, param)
    for param in get_torch_module(model).parameters():
        param.grad = None
