"""Thinc architectures: the torch tagger wrapped for spaCy, one per sharing variant.

The torch module's size depends on the label sets, which the component only
learns in `initialize`, so the wrapper starts with an empty module and `init`
builds the real one from `model.attrs["tag_names"]`.
"""
import os
from dataclasses import dataclass
from io import BytesIO
from typing import Any, Callable, Dict, List, Sequence, Tuple

import numpy
import torch
from spacy.tokens import Span
from spacy.util import registry
from thinc.api import ArgsKwargs, Model, PyTorchWrapper_v3, get_torch_default_device, xp2torch
from thinc.shims.pytorch import PyTorchShim

from .pytorch_tagger import (
    GATED,
    PRIVATE,
    SHARED,
    SOURCE,
    TARGET,
    LayerPlan,
    TransferTagger,
    make_plan,
)
from .tag_scheme import allowed_transitions

# nlp.pipe(n_process=...) forks. torch's OpenMP thread pool does not survive a
# fork and the child's first parallel op deadlocks; one thread per worker
# process is also what multiprocess serving wants.
os.register_at_fork(after_in_child=lambda: torch.set_num_threads(1))

TaggerInput = Tuple[List[Span], str]
TaggerOutput = Tuple[torch.Tensor, ...]
MAX_HASHES = 4  # Thinc's ops.hash gives four independent 32-bit hashes per key.


@dataclass(frozen=True)
class TaggerSettings:
    """Sizes and regularisation of the BiLSTM-CRF, the same for every copy."""

    char_rows: int
    char_width: int
    char_hidden: int
    max_word_length: int
    word_rows: int
    word_width: int
    word_hashes: int
    word_hidden: int
    dropout: float

    def __post_init__(self) -> None:
        if not 1 <= self.word_hashes <= MAX_HASHES:
            raise ValueError(
                f"word_hashes = {self.word_hashes} in the tagger settings: use 1 to {MAX_HASHES}."
            )
        if self.max_word_length < 2:
            raise ValueError(
                f"max_word_length = {self.max_word_length} in the tagger settings: use 2 or more."
            )


@registry.misc("spacy_dtn.TaggerSettings.v1")
def make_tagger_settings(
    char_rows: int = 1000,
    char_width: int = 25,
    char_hidden: int = 25,
    max_word_length: int = 24,
    word_rows: int = 50000,
    word_width: int = 100,
    word_hashes: int = 2,
    word_hidden: int = 100,
    dropout: float = 0.5,
) -> TaggerSettings:
    return TaggerSettings(
        char_rows, char_width, char_hidden, max_word_length,
        word_rows, word_width, word_hashes, word_hidden, dropout,
    )


@registry.architectures("spacy_dtn.HierarchicalTagger.v1")
def build_hierarchical_tagger(settings: TaggerSettings) -> Model[TaggerInput, TaggerOutput]:
    """One task, every layer its own: the target-only baseline and the source model."""
    return build_tagger_model(make_plan(), settings, multi_task=False, gate="scalar")


@registry.architectures("spacy_dtn.SharedTransferTagger.v1")
def build_shared_transfer_tagger(
    shared: List[str], settings: TaggerSettings
) -> Model[TaggerInput, TaggerOutput]:
    """A fixed sharing scheme: exactly the named layers are tied across tasks."""
    return build_tagger_model(make_plan(shared=shared), settings, multi_task=True, gate="scalar")


@registry.architectures("spacy_dtn.DynamicTransferTagger.v1")
def build_dynamic_transfer_tagger(
    gated: List[str], settings: TaggerSettings, gate: str = "dynamic", shared: List[str] = []
) -> Model[TaggerInput, TaggerOutput]:
    """DTN: gated layers have a shared and a target-private copy mixed by a gate."""
    return build_tagger_model(make_plan(shared=shared, gated=gated), settings, multi_task=True, gate=gate)


def build_tagger_model(
    plan: LayerPlan, settings: TaggerSettings, *, multi_task: bool, gate: str
) -> Model[TaggerInput, TaggerOutput]:
    # v3 (same saved format as v2) takes the deserializer: weights only, no pickled objects.
    wrapper = PyTorchWrapper_v3(
        torch.nn.Module(),
        convert_inputs=_convert_inputs,
        convert_outputs=_convert_outputs,
        deserialize_model=deserialize_torch_state,
    )
    return Model(
        "dtn_tagger",
        _forward,
        init=_init,
        layers=[wrapper],
        attrs={"plan": plan, "settings": settings, "multi_task": multi_task, "gate": gate,
               "tag_names": {}, "tag_scheme": None},
        refs={"torch": wrapper},
    )


def deserialize_torch_state(module: torch.nn.Module, state_bytes: bytes, device: "torch.device") -> torch.nn.Module:
    """Load saved parameters without unpickling arbitrary objects.

    Thinc's default calls `torch.load` without `weights_only`, which on torch
    before 2.6 (or with TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD set) runs whatever a
    pickle in a model file asks for. A state dict needs only tensors, so
    anything else fails here with `pickle.UnpicklingError`.
    """
    state = torch.load(BytesIO(state_bytes), map_location=device, weights_only=True)
    module.load_state_dict(state)
    module.to(device)
    return module


def get_torch_module(model: Model) -> TransferTagger:
    module = model.get_ref("torch").shims[0]._model
    if not isinstance(module, TransferTagger):
        raise ValueError("The tagger model is not initialized: call nlp.initialize() first.")
    return module


def _init(model: Model, X: Any = None, Y: Any = None) -> None:
    tag_names: Dict[str, List[str]] = model.attrs["tag_names"]
    if TARGET not in tag_names:
        raise ValueError("The tagger needs the target tag names before initialize.")
    plan = dict(model.attrs["plan"])
    if not model.attrs["multi_task"] or SOURCE not in tag_names:
        tag_names = {TARGET: tag_names[TARGET]}
    if len(tag_names) == 1:
        # Without a source task a shared or gated layer would be a single copy anyway.
        plan = {layer: PRIVATE for layer in plan}
    elif plan["output"] in (SHARED, GATED) and tag_names[SOURCE] != tag_names[TARGET]:
        raise ValueError(
            f"The architecture {plan['output']} the `output` layer, but source and target "
            f"have different tags: source {tag_names[SOURCE]}, target {tag_names[TARGET]}. "
            "Remove 'output' from the architecture's `shared`/`gated` list."
        )
    constraints = {
        task: tuple(torch.from_numpy(m) for m in allowed_transitions(names, model.attrs["tag_scheme"]))
        for task, names in tag_names.items()
    }
    settings: TaggerSettings = model.attrs["settings"]
    module = TransferTagger(
        plan,
        {task: len(names) for task, names in tag_names.items()},
        constraints,
        char_rows=settings.char_rows,
        char_width=settings.char_width,
        char_hidden=settings.char_hidden,
        word_rows=settings.word_rows,
        word_width=settings.word_width,
        word_hidden=settings.word_hidden,
        dropout=settings.dropout,
        gate=model.attrs["gate"],
    )
    shim: PyTorchShim = model.get_ref("torch").shims[0]
    shim._model = module.to(get_torch_default_device())


def _forward(model: Model, X: TaggerInput, is_train: bool) -> Tuple[TaggerOutput, Callable]:
    segments, task = X
    features = featurize(segments, model.attrs["settings"], model.ops)
    return model.get_ref("torch")((features, task), is_train)


def featurize(segments: Sequence[Span], settings: TaggerSettings, ops: Any) -> Dict[str, numpy.ndarray]:
    """Hashed word rows per token, and character rows per unique word form.

    The character BiLSTM is the CPU bottleneck, so it runs once per distinct
    word of the batch and `token_unique` scatters its outputs back.
    """
    lengths = numpy.array([len(s) for s in segments], dtype="int64")
    batch, width = len(segments), int(lengths.max(initial=1))
    norms = numpy.array([t.norm for s in segments for t in s], dtype="uint64")
    hashed = ops.to_numpy(ops.hash(norms, 0))[:, : settings.word_hashes].astype("int64")
    hashed = hashed % (settings.word_rows - 1) + 1  # row 0 is padding
    word_ids = numpy.zeros((batch, width, settings.word_hashes), dtype="int64")
    token_unique = numpy.zeros((batch, width), dtype="int64")
    forms: Dict[str, int] = {}
    i = 0
    for b, segment in enumerate(segments):
        for t, token in enumerate(segment):
            word_ids[b, t] = hashed[i]
            token_unique[b, t] = forms.setdefault(_clip(token.text, settings.max_word_length), len(forms))
            i += 1
    char_lengths = numpy.array([len(f) for f in forms], dtype="int64")
    chars = numpy.zeros((len(forms), int(char_lengths.max(initial=1))), dtype="int64")
    for u, form in enumerate(forms):
        chars[u, : len(form)] = [ord(c) % (settings.char_rows - 1) + 1 for c in form]
    return {
        "word_ids": word_ids,
        "lengths": lengths,
        "chars": chars,
        "char_lengths": char_lengths,
        "token_unique": token_unique,
    }


def _clip(text: str, limit: int) -> str:
    """Keep prefix and suffix of very long tokens: they carry the morphology."""
    if len(text) <= limit:
        return text
    return text[: limit // 2] + text[len(text) - (limit - limit // 2) :]


def _convert_inputs(model: Model, X: Tuple[Dict[str, numpy.ndarray], str], is_train: bool):
    features, task = X
    device = model.shims[0].device
    kwargs = {name: xp2torch(array, device=device) for name, array in features.items()}
    return ArgsKwargs(args=(), kwargs={**kwargs, "task": task}), lambda d_inputs: None


def _convert_outputs(model: Model, X_Ytorch: Any, is_train: bool):
    """Hand the torch outputs on unconverted: the CRF loss is computed in torch."""
    _, Ytorch = X_Ytorch

    def backprop(dY: Tuple[torch.Tensor, ...]) -> ArgsKwargs:
        pairs = [(y, dy) for y, dy in zip(Ytorch, dY) if dy is not None]
        return ArgsKwargs(args=([y for y, _ in pairs],), kwargs={"grad_tensors": [dy for _, dy in pairs]})

    return Ytorch, backprop
