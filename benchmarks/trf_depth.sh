#!/usr/bin/env bash
# The transformer depth study (README, "Fewer transformer layers"): dtn_trf with the
# first LAYERS layers of all-MiniLM-L6-v2, source and target alike, at 10% of
# NCBI-disease, under the earlier 600-step budget (source and target), best dev
# checkpoint; the source is trained once per depth. Needs the grid's corpora
# (python -m benchmarks.run makes them) and .[transformers]. One core, e.g.
#   OMP_NUM_THREADS=1 taskset -c 0 bash benchmarks/trf_depth.sh 4 0
# then python benchmarks/precision_f1.py OUT.json benchmarks/work/trf_depth/L4/target_0/model-best ...
set -euo pipefail
L=$1; S=$2
cd "$(dirname "$0")/.."
C=benchmarks/work/corpus/BC5CDR-NCBI-disease
W=benchmarks/work/trf_depth/L$L
DEPTH="--components.ner.model.tok2vec.transformer_config.num_hidden_layers $L"
BUDGET="--training.max_steps 600 --training.eval_frequency 100"
mkdir -p "$W"
[ -f $C/target_train_0.1_$S.spacy ] || python -c "from benchmarks.run import corpora; corpora('BC5CDR->NCBI-disease', 0.1, $S)"
[ -d "$W/source/model-best" ] || python -m spacy train configs/source_trf.cfg --output "$W/source" \
    --paths.train $C/source_train.spacy --paths.dev $C/source_dev.spacy --system.seed 0 $BUDGET $DEPTH > "$W/source.log" 2>&1
python -m spacy train configs/dtn_trf.cfg --output "$W/target_$S" --paths.train $C/target_train_0.1_$S.spacy \
    --paths.dev $C/target_dev.spacy --paths.source_model "$W/source/model-best" --system.seed $S $BUDGET $DEPTH > "$W/target_$S.log" 2>&1
