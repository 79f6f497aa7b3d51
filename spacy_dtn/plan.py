"""The sharing plan: tasks, sharing modes, layer names, and which copies a task reads.

Every sharable layer has a mode:
- "shared": one copy, used by both tasks;
- "private": one copy per task;
- "gated" (DTN): a shared copy, which the source task reads alone, and a
  target-private copy; the target mixes both through a learned gate.

This module is the one answer to "which copy does a task read" for the torch
tagger, sequential transfer and the search; it imports no torch, so readers,
the search and the report can use it without loading the model code.
"""
from typing import Dict, Sequence, Tuple

SOURCE = "source"
TARGET = "target"
SHARED = "shared"
PRIVATE = "private"
GATED = "gated"
# The BiLSTM-CRF's sharable layers.
SHARABLE_LAYERS = ("char_embed", "char_lstm", "word_embed", "word_lstm", "output")
# Above a transformer (one copy, shared by both tasks): a projection of its
# token vectors, the word BiLSTM and the output layer.
VECTOR_LAYERS = ("vector_proj", "word_lstm", "output")
# Scores and meta.json report the mean gate of a layer under this prefix.
GATE_SCORE_PREFIX = "gate_"

LayerPlan = Dict[str, str]


def make_plan(
    shared: Sequence[str] = (), gated: Sequence[str] = (), layers: Sequence[str] = SHARABLE_LAYERS
) -> LayerPlan:
    """Validate layer names and return the mode of every sharable layer."""
    for setting, names in (("shared", shared), ("gated", gated)):
        unknown = [n for n in names if n not in layers]
        if unknown:
            raise ValueError(
                f"Unknown layer(s) {unknown} in the architecture's `{setting}` "
                f"setting: use names from {list(layers)}."
            )
    both = sorted(set(shared) & set(gated))
    if both:
        raise ValueError(
            f"Layer(s) {both} are both shared and gated in the architecture's "
            "settings: a layer is either one set of parameters or gated, not both."
        )
    return {
        layer: SHARED if layer in shared else GATED if layer in gated else PRIVATE
        for layer in layers
    }


def copies_read(mode: str, task: str) -> Tuple[str, ...]:
    """The copies a task reads of a layer in this mode: two (shared, then
    the target's own) where the target mixes them through a gate, else one."""
    if mode == GATED and task == TARGET:
        return (SHARED, TARGET)
    if mode in (SHARED, GATED):
        return (SHARED,)
    return (task,)


def layer_copies(mode: str, tasks: Sequence[str]) -> Tuple[str, ...]:
    """Every copy a layer in this mode has, for a tagger with these tasks."""
    return tuple(sorted({name for task in tasks for name in copies_read(mode, task)}))


def shared_copy_prefixes(plan: LayerPlan) -> Tuple[str, ...]:
    """The parameter-name prefixes of the layers' shared copies (the ones
    sequential transfer starts from the source model's weights)."""
    return tuple(f"layers.{layer}.{SHARED}." for layer, mode in plan.items() if mode in (SHARED, GATED))


def single_task(plan: LayerPlan) -> LayerPlan:
    """Without a source task a shared or gated layer would be one copy anyway."""
    return {layer: PRIVATE for layer in plan}
