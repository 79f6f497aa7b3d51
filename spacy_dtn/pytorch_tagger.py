"""The hierarchical BiLSTM-CRF tagger with per-layer sharing between two tasks.

Every sharable layer follows a plan (plan.py): shared, private or gated.
A single-task tagger is the same module with only the target task and every
layer private, so weights move between the variants by parameter name.

Two encoders share that machinery: characters and hashed words
(`CharWordTagger`), or token vectors from a transformer (`TokenVectorTagger`).
"""
from typing import Callable, Dict, Mapping, NamedTuple, Optional, Tuple, Union

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from .plan import GATED, SHARED, TARGET, LayerPlan, copies_read, layer_copies
from .pytorch_crf import TRAIN_PENALTY, CRFScores, TagConstraints
from .pytorch_gates import Gate
from .pytorch_serving import FormCache

Constraints = Tuple[Tensor, Tensor, Tensor]
# Per gated layer: the sum of its gate values over real characters or tokens,
# and how many values that sum has (a tensor of two).
GateSums = Dict[str, Tensor]
# Names of the gates' parameters in a TransferTagger (its `gates` and `crf_gate`).
GATE_PARAMETERS = ("gates.", "crf_gate")


def pack(X: Tensor, lengths: Tensor) -> PackedSequence:
    """The real positions of a padded batch (B, T, W), so padding costs nothing."""
    return pack_padded_sequence(X, lengths.cpu(), batch_first=True, enforce_sorted=False)


class PaddedRows(NamedTuple):
    """A padded batch (B, T, W) and each row's length: what a BiLSTM reads in training."""

    X: Tensor
    lengths: Tensor


def sequence_input(X: Tensor, lengths: Tensor, training: bool) -> Union[PackedSequence, PaddedRows]:
    """How a BiLSTM reads a padded batch: packed in prediction (padding costs
    nothing), as padded rows in training (see BiLSTM)."""
    return PaddedRows(X, lengths) if training else pack(X, lengths)


class BiLSTM(nn.Module):
    """Bidirectional LSTM over a batch: its states, or with `final_states`
    one summary per sequence.

    Packed input (prediction) runs the bidirectional LSTM as it is. Padded rows
    (training) run each direction as a one-way LSTM with the same weights, the
    backward one over each row reversed within its length, so padding never
    reaches a real position: the same function. On the CPU the packed LSTM's
    backward pass takes one slice-backward (a zeroed copy of the whole input)
    per position, while padded rows run oneDNN's fused LSTM and its fused
    backward: forward plus backward of the word BiLSTM on a 500-word batch
    1.8x faster. States at padded positions are not zero in training; the CRF
    and the gate read-out mask them."""

    def __init__(self, width_in: int, hidden: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(width_in, hidden, batch_first=True, bidirectional=True)

    def forward(self, X: Union[PackedSequence, PaddedRows], final_states: bool = False) -> Union[PackedSequence, Tensor]:
        if isinstance(X, PaddedRows):
            return self._padded(X.X, X.lengths, final_states)
        output, (h_n, _) = self.lstm(X)
        if final_states:
            # Last forward state and first backward state: the word's summary.
            return torch.cat([h_n[0], h_n[1]], dim=-1)
        return output

    def _padded(self, X: Tensor, lengths: Tensor, final_states: bool) -> Tensor:
        positions = torch.arange(X.shape[1], device=X.device)
        # Row b's position t reads its position lengths[b] - 1 - t (padding maps anywhere).
        reverse = (lengths.unsqueeze(1) - 1 - positions).clamp(min=0).unsqueeze(2)
        forward = self._direction(X, "")
        backward = self._direction(X.gather(1, reverse.expand(-1, -1, X.shape[2])), "_reverse")
        backward = backward.gather(1, reverse.expand(-1, -1, backward.shape[2]))
        if final_states:
            last = (lengths - 1).view(-1, 1, 1).expand(-1, 1, forward.shape[2])
            return torch.cat([forward.gather(1, last).squeeze(1), backward[:, 0]], dim=-1)
        return torch.cat([forward, backward], dim=-1)

    def _direction(self, X: Tensor, suffix: str) -> Tensor:
        """One direction of the LSTM (`suffix` "" or "_reverse") as a one-way LSTM over X."""
        weights = [getattr(self.lstm, f"{name}_l0{suffix}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        start = X.new_zeros(1, X.shape[0], self.lstm.hidden_size)
        # What nn.LSTM itself calls: (input, (h0, c0), weights, biases, layers, dropout, train, bidirectional, batch_first).
        return torch._VF.lstm(X, (start, start), weights, True, 1, 0.0, self.training, False, True)[0]


class HashEmbedding(nn.Module):
    """Sum of several hashed rows per word: no vocabulary, so source and target
    (and a pipeline trained later) index the same rows for the same word.

    With static vectors (a table whose row 0 is zeros, for words without a
    vector) a learned projection of the word's vector is added, as spaCy's
    StaticVectors does: words the vectors lack keep their hashed rows alone.
    Frozen vectors are a buffer outside the saved state (the pipeline's vocab
    holds them) that every copy reads; fine-tuned ones are each copy's own
    parameter, saved with the weights."""

    def __init__(self, rows: int, width: int, vectors: Optional[Tensor] = None, fine_tune_vectors: bool = False) -> None:
        super().__init__()
        # Sparse: a batch's gradient holds its rows only (see tagger_model.step_tagger_shim).
        self.table = nn.Embedding(rows, width, padding_idx=0, sparse=True)
        nn.init.normal_(self.table.weight, std=0.1)
        with torch.no_grad():
            self.table.weight[0].zero_()
        if vectors is not None:
            if fine_tune_vectors:
                self.vectors = nn.Parameter(vectors.clone())
            else:
                self.register_buffer("vectors", vectors, persistent=False)
            self.project = nn.Linear(vectors.shape[1], width, bias=False)

    def forward(self, ids: Tensor, vector_ids: Optional[Tensor] = None) -> Tensor:
        X = self.table(ids).sum(dim=-2)
        if vector_ids is not None:
            X = X + self.project(nn.functional.embedding(vector_ids, self.vectors, padding_idx=0))
        return X


class OutputLayer(nn.Module):
    """Projection to tag scores plus the CRF's transition scores."""

    def __init__(self, width_in: int, n_tags: int) -> None:
        super().__init__()
        self.linear = nn.Linear(width_in, n_tags)
        self.start = nn.Parameter(torch.zeros(n_tags))
        self.transitions = nn.Parameter(torch.zeros(n_tags, n_tags))
        self.end = nn.Parameter(torch.zeros(n_tags))

    def forward(self, X: Tensor) -> Tensor:
        return self.linear(X)

    def crf(self) -> Tuple[Tensor, Tensor, Tensor]:
        return self.start, self.transitions, self.end


class TransferTagger(nn.Module):
    """Copies of every layer as the plan says, their gates, and the CRF.
    Subclasses say how tokens are encoded (`encode`)."""

    def __init__(
        self,
        plan: LayerPlan,
        tag_counts: Mapping[str, int],
        constraints: Mapping[str, Constraints],
        factories: Mapping[str, Callable[[str], nn.Module]],
        widths: Mapping[str, int],
        *,
        dropout: float,
        gate: str,
    ) -> None:
        super().__init__()
        self.plan = dict(plan)
        self.tasks = sorted(tag_counts)
        self.layers = nn.ModuleDict()
        self.gates = nn.ModuleDict()
        for layer, mode in self.plan.items():
            if mode == GATED:
                self.gates[layer] = Gate(gate, widths[layer])
            self.layers[layer] = nn.ModuleDict(
                {name: factories[layer](TARGET if name == SHARED else name) for name in layer_copies(mode, self.tasks)}
            )
        if self.plan["output"] == GATED:
            self.crf_gate = nn.Parameter(torch.zeros(1))
        self.constraints = nn.ModuleDict(
            {task: TagConstraints(*constraints[task]) for task in self.tasks}
        )
        self.dropout = nn.Dropout(dropout)

    def start_gates_at(self, bias: float) -> None:
        for gate in self.gates.values():
            gate.start_at(bias)
        if self.plan["output"] == GATED:
            with torch.no_grad():
                self.crf_gate.fill_(bias)

    def copies(self, layer: str, task: str) -> Tuple[nn.Module, ...]:
        """The copies of a layer the task reads (two where a gate mixes them)."""
        return tuple(self.layers[layer][name] for name in copies_read(self.plan[layer], task))

    def _run(
        self, layer: str, task: str, gates: Dict[str, Tensor], *args, **kwargs
    ) -> Tensor:
        copies = self.copies(layer, task)
        if len(copies) == 1:
            return copies[0](*args, **kwargs)
        if not self.training and all(type(copy) is nn.Embedding for copy in copies):
            return self._run_folded(layer, copies, gates, *args)
        shared, private = (copy(*args, **kwargs) for copy in copies)
        if isinstance(shared, PackedSequence):
            # Both copies read one packing: mix the real positions only.
            mixed, gates[layer] = self.gates[layer](shared.data, private.data)
            return PackedSequence(mixed, shared.batch_sizes, shared.sorted_indices, shared.unsorted_indices)
        mixed, gates[layer] = self.gates[layer](shared, private)
        return mixed

    def _run_sequence(self, layer: str, task: str, gates: Dict[str, Tensor], X: Tensor, lengths: Tensor) -> Tensor:
        """A BiLSTM layer over padded X (B, T, W). In prediction its copies and
        gate see the real positions alone (in batches of 256 NCBI-disease test
        sentences two thirds of the positions are padding), and the mixed states
        are padded once; in training the copies read padded rows, whose fused
        backward pass is faster (BiLSTM)."""
        states = self._run(layer, task, gates, sequence_input(X, lengths, self.training))
        if isinstance(states, PackedSequence):
            return pad_packed_sequence(states, batch_first=True, total_length=X.shape[1])[0]
        return states

    def _run_folded(self, layer: str, copies: Tuple[nn.Module, ...], gates: Dict[str, Tensor], ids: Tensor) -> Tensor:
        """A gated embedding in prediction: its output and gate depend on the row
        alone, so the two tables are mixed once per pass (rows, not every
        position) and looked up. The same sums as mixing the looked-up rows;
        training keeps the per-position path, whose gradients it needs."""
        table, gate_table = self.gates[layer](copies[0].weight, copies[1].weight)
        gates[layer] = nn.functional.embedding(ids, gate_table)
        return nn.functional.embedding(ids, table)

    def _run_distinct(self, layer: str, task: str, gates: Dict[str, Tensor], rows: Tensor, index: Tensor) -> Tensor:
        """The layer (and its gate) on distinct input rows, placed at the positions `index` names.
        Prediction only: training keeps the per-position path, whose gradients it sums."""
        distinct: Dict[str, Tensor] = {}
        output = self._run(layer, task, distinct, rows)
        gates.update({name: values[index] for name, values in distinct.items()})
        return output[index]

    def crf_params(self, task: str) -> Tuple[Tensor, Tensor, Tensor]:
        copies = self.copies("output", task)
        if len(copies) == 2:
            g = torch.sigmoid(self.crf_gate)
            shared, private = (copy.crf() for copy in copies)
            params = tuple(g * s + (1 - g) * p for s, p in zip(shared, private))
        else:
            params = copies[0].crf()
        # Training keeps gradients finite; decoding must never pick an illegal move.
        penalty = TRAIN_PENALTY if self.training else float("-inf")
        return self.constraints[task].apply(*params, penalty=penalty)

    def encode(self, task: str, gates: Dict[str, Tensor], **features: Tensor) -> Tensor:
        """Word BiLSTM states (B, T, H) of the task's path."""
        raise NotImplementedError

    def forward(self, task: str = TARGET, **features: Tensor) -> Tuple[CRFScores, GateSums]:
        """The task's CRF scores, and in evaluation the gate sums of the target
        path (empty in training, where nothing reads them)."""
        if task not in self.tasks:
            raise ValueError(f"This tagger has no {task!r} task: it has {self.tasks}.")
        gates: Dict[str, Tensor] = {}
        states = self.encode(task, gates, **features)
        emissions = self._run("output", task, gates, states)
        lengths = features["lengths"]
        mask = torch.arange(states.shape[1], device=lengths.device) < lengths.unsqueeze(1)
        scores = CRFScores(emissions, *self.crf_params(task), mask)
        if self.training or getattr(self, "form_cache", None) is not None:
            # Nothing reads gate sums in training or in a cached stream (which
            # runs the character layers on new forms only).
            return scores, {}
        chars = features.get("chars")
        return scores, gate_sums(gates, chars > 0 if chars is not None else None, mask)


def output_factory(width_in: int, tag_counts: Mapping[str, int]) -> Callable[[str], nn.Module]:
    # A shared output layer is only allowed with equal tag sets, so the
    # target's tag count sizes it.
    return lambda task: OutputLayer(width_in, tag_counts[task])


class CharWordTagger(TransferTagger):
    """Character BiLSTM and hashed word embedding (plus static vectors where
    given: a (rows + 1, width) table, row 0 for words without one) per token,
    then a word BiLSTM."""

    def __init__(
        self,
        plan: LayerPlan,
        tag_counts: Mapping[str, int],
        constraints: Mapping[str, Constraints],
        *,
        char_rows: int,
        char_width: int,
        char_hidden: int,
        word_rows: int,
        word_width: int,
        word_hidden: int,
        dropout: float,
        gate: str,
        vectors: Optional[Tensor] = None,
        fine_tune_vectors: bool = False,
    ) -> None:
        factories = {
            "char_embed": lambda task: nn.Embedding(char_rows, char_width, padding_idx=0),
            "char_lstm": lambda task: BiLSTM(char_width, char_hidden),
            "word_embed": lambda task: HashEmbedding(word_rows, word_width, vectors, fine_tune_vectors),
            "word_lstm": lambda task: BiLSTM(word_width + 2 * char_hidden, word_hidden),
            "output": output_factory(2 * word_hidden, tag_counts),
        }
        widths = {
            "char_embed": char_width,
            "char_lstm": 2 * char_hidden,
            "word_embed": word_width,
            "word_lstm": 2 * word_hidden,
            "output": tag_counts[TARGET],
        }
        super().__init__(plan, tag_counts, constraints, factories, widths, dropout=dropout, gate=gate)
        # Set for one prediction stream by tagger_model.prediction_cache; never saved.
        self.form_cache: Optional[FormCache] = None

    def encode(
        self,
        task: str,
        gates: Dict[str, Tensor],
        *,
        word_ids: Tensor,
        lengths: Tensor,
        chars: Tensor,
        char_lengths: Tensor,
        form_keys: Tensor,
        token_unique: Tensor,
        distinct_word_ids: Tensor,
        token_word: Tensor,
        vector_ids: Optional[Tensor] = None,
    ) -> Tensor:
        def summaries(forms: Optional[Tensor] = None) -> Tensor:
            rows, row_lengths = (chars, char_lengths) if forms is None else (chars[forms], char_lengths[forms])
            char_vectors = self._run("char_embed", task, gates, rows)
            rows = sequence_input(char_vectors, row_lengths, self.training)
            return self._run("char_lstm", task, gates, rows, final_states=True)

        if self.training:
            self.form_cache = None  # the weights change: a stream's summaries go stale
        word_chars = summaries() if self.form_cache is None else self.form_cache.lookup(form_keys, summaries)
        if self.training or vector_ids is not None:
            # Static vectors are found by ORTH, not NORM: per position.
            words = self._run("word_embed", task, gates, word_ids, vector_ids)
        else:  # the same rows, embedded and gated once per distinct NORM
            words = self._run_distinct("word_embed", task, gates, distinct_word_ids, token_word)
        X = self.dropout(torch.cat([words, word_chars[token_unique]], dim=-1))
        return self.dropout(self._run_sequence("word_lstm", task, gates, X, lengths))


class TokenVectorTagger(TransferTagger):
    """Token vectors from a (shared) transformer, projected per copy, then a word BiLSTM.

    The projection is where the target chooses between the source-tuned view
    of the transformer output and its own; the transformer itself is one copy.
    """

    def __init__(
        self,
        plan: LayerPlan,
        tag_counts: Mapping[str, int],
        constraints: Mapping[str, Constraints],
        *,
        vector_width: int,
        proj_width: int,
        word_hidden: int,
        dropout: float,
        gate: str,
    ) -> None:
        factories = {
            "vector_proj": lambda task: nn.Linear(vector_width, proj_width),
            "word_lstm": lambda task: BiLSTM(proj_width, word_hidden),
            "output": output_factory(2 * word_hidden, tag_counts),
        }
        widths = {"vector_proj": proj_width, "word_lstm": 2 * word_hidden, "output": tag_counts[TARGET]}
        super().__init__(plan, tag_counts, constraints, factories, widths, dropout=dropout, gate=gate)

    def encode(self, task: str, gates: Dict[str, Tensor], *, vectors: Tensor, lengths: Tensor) -> Tensor:
        X = self.dropout(self._run("vector_proj", task, gates, self.dropout(vectors)))
        return self.dropout(self._run_sequence("word_lstm", task, gates, X, lengths))


def gate_sums(gates: Mapping[str, Tensor], char_mask: Optional[Tensor], token_mask: Tensor) -> GateSums:
    """Sum and count of gate values per layer over real characters/tokens only."""
    out = {}
    for layer, values in gates.items():
        # Rows (N, W) are all real: char_lstm's one summary per word form, a
        # BiLSTM's packed positions. Padded batches (B, T, W) are masked.
        if values.dim() == 2:
            total, count = values.sum(), values.numel()
        else:
            mask = char_mask if layer == "char_embed" else token_mask
            total = (values * mask.unsqueeze(-1)).sum()
            count = mask.sum() * values.shape[-1]
        out[layer] = torch.stack([total.float(), torch.as_tensor(count, dtype=torch.float32, device=total.device)])
    return out
