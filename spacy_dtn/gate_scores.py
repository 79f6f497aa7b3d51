"""The gate scores of a saved pipeline, as the report shows them: `gate_<layer>`
is the mean gate of a layer on the dev docs, how much of the layer the target
takes from the shared copy.

Policy: only a layer the architecture gates has a gate, and only in a
pipeline trained with a source task (without one every layer is the
target's own). A shared layer is not a gate at 1 nor a private one a gate at
0; where the reason a layer has no gate is known it is said in words (the
output layer is private when source and target have different labels).
A gate is also compared with its start (sigmoid of the architecture's
`gate_bias`, where every gate begins): one that ends within UNMOVED of it was
not moved by the data, so there the start, not the data, set how much of the
layer is shared (README, "What the gates say").
Read from a saved pipeline's files (config.cfg, meta.json, the component's
cfg), so the report neither builds nor loads a model.
"""
import inspect
import math
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import srsly
from spacy import util
from spacy.util import registry

from .plan import GATE_SCORE_PREFIX
from .saved_format import parse_saved_cfg

FACTORY = "dtn_ner"
OUTPUT_LAYER = "output"
LABELS_DIFFER = "private (label sets differ)"
NOT_SCORED = "gated, not scored"  # a pipeline saved without `spacy train`'s scores in meta.json
UNMOVED = 0.05


def saved_gates(model_dir: Path) -> Tuple[Dict[str, float], Dict[str, str]]:
    """The dev-set gate of each gated layer of a saved pipeline (from meta.json), and
    why a layer without a gate has none, where that is known: ({layer: gate}, {layer: why})."""
    config = util.load_config(model_dir / "config.cfg", interpolate=False)
    name = dtn_component(config)
    if name is None:
        return {}, {}
    cfg_path = model_dir / name / "cfg"
    cfg = parse_saved_cfg(cfg_path.read_text(encoding="utf8"), str(cfg_path))
    if not cfg["source_labels"]:
        return {}, {}
    model = config["components"][name]["model"]
    performance = srsly.read_json(model_dir / "meta.json").get("performance", {})
    # spaCy writes 0.0 for a score weight the pipeline never reported, so the
    # gated layers come from the architecture, not from the keys.
    gated = list(model.get("gated", []))
    gates = {layer: performance[GATE_SCORE_PREFIX + layer] for layer in gated if GATE_SCORE_PREFIX + layer in performance}
    notes = {layer: NOT_SCORED for layer in gated if layer not in gates}
    output_private = OUTPUT_LAYER not in gated + list(model.get("shared", []))
    if output_private and sorted(cfg["labels"]) != sorted(cfg["source_labels"]):
        notes[OUTPUT_LAYER] = LABELS_DIFFER
    return gates, notes


def saved_gate_start(model_dir: Path) -> Optional[float]:
    """Where every gate of a saved pipeline started, sigmoid(gate_bias), with the
    architecture's default where the config leaves it out; None where the
    architecture has no gate_bias (no DTN component)."""
    config = util.load_config(model_dir / "config.cfg", interpolate=True)
    name = dtn_component(config)
    if name is None:
        return None
    model = config["components"][name]["model"]
    bias = model.get("gate_bias", architecture_default(model["@architectures"], "gate_bias"))
    return None if bias is None else 1 / (1 + math.exp(-float(bias)))


def architecture_default(architecture: str, argument: str) -> Optional[Any]:
    """The default of one argument of a registered architecture; None without one."""
    parameter = inspect.signature(registry.architectures.get(architecture)).parameters.get(argument)
    return None if parameter is None or parameter.default is inspect.Parameter.empty else parameter.default


def dtn_component(config: Dict) -> Optional[str]:
    """The name of the pipeline's dtn_ner component (the first, if several); None without one."""
    names: List[str] = [n for n in config["nlp"]["pipeline"] if config["components"][n].get("factory") == FACTORY]
    return names[0] if names else None
