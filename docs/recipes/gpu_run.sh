#!/usr/bin/env bash
# One fine-tuning run of lbam-compact on any machine with CUDA, stopped after MINUTES of training.
# docs/training.md ("On a GPU machine") says when and how. Prepare the data once (on any machine):
#   python docs/recipes/prepare_data.py ../shared/data ../runs/data
#   python docs/recipes/pack_data.py ../runs/data .gpudata
# then, in the repo on the GPU machine (with .gpudata copied beside it):
#   bash docs/recipes/gpu_run.sh
# The exported generators (float16), the log, the metrics and the config are written to OUT.
# Environment: MINUTES (default 7), CONFIG (default docs/recipes/lbam-compact-gpu.yaml), DATA
# (default .gpudata), RUN (the run folder, default /tmp/lbam-gpu-run), OUT (default gpu_out);
# further arguments go to lbam train (--set KEY=VALUE, --init-weights FILE, ...).
set -uo pipefail
MINUTES=${MINUTES:-7}
CONFIG=${CONFIG:-docs/recipes/lbam-compact-gpu.yaml}
DATA=${DATA:-.gpudata}
RUN=${RUN:-/tmp/lbam-gpu-run}
OUT=${OUT:-gpu_out}
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

python3 -c "import torch; print('torch', torch.__version__, 'CUDA:', torch.cuda.is_available() and torch.cuda.get_device_name())"
# SIGINT at the time limit: the trainer finishes its step, writes a checkpoint and exits.
timeout -s INT -k 120 "${MINUTES}m" python3 -m lbam train --config "$CONFIG" \
    --data "$DATA/train" --val-data "$DATA/val" --out "$RUN" \
    --set "losses.vgg_weights=stlpips=$DATA/vgg_loss_layers.pth" "$@"
echo "lbam train exited with $? (124: stopped at the ${MINUTES}-minute limit)"

python3 -m lbam export --fp16 --checkpoint latest "$RUN" "$OUT/latest.safetensors" || exit 1
python3 -m lbam export --fp16 --checkpoint best "$RUN" "$OUT/best.safetensors" \
    || echo "no best checkpoint (no validation ran)"
cp "$RUN/train.log" "$RUN/metrics.jsonl" "$RUN/config.yaml" "$OUT/"
ls -l "$OUT"
