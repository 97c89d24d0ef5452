#!/usr/bin/env bash
# Train the effunet generator on one NVIDIA GPU (bf16 autocast, channels-last) within a time budget,
# continuing from the shipped generator, on the photos packed by bench/gpu/pack.py.
# Run on the GPU machine from the repository root, with runs/gpu carried:
#     bash bench/gpu/train.sh [SECONDS] [STEPS]        (defaults: 510 s, 6000 steps)
#     HINTS=1 bash bench/gpu/train.sh                  the hint-conditioned generator (issue #21): its whole decoder,
#                                                      from the shipped v5, as v5 was trained (model card, "v5");
#     pack its photos without the choice's held-out ones: python bench/gpu/pack.py --sources \
#         runs/splits/imagenette_train_v4.txt ../shared/data/bsds500/train runs/splits/utkface_train.txt
#     HINTS=2 bash bench/gpu/train.sh                  HINTS=1's recipe with the hints fed to the encoder too, which trains
#                                                      (--hint-encoder --no-hint-copies: session 10's best point beat
#                                                      v5 with hints but did not hold, and its automatic colors moved
#                                                      on scenes: check both, on more photos)
# The generator (float16 safetensors, ready for --init-from and colorizer-export) is written to
# $OUT/generator.safetensors, with the run's train.log and metrics.jsonl beside it.
# Written for the GPU machine described in ../shared/docs/DESIGN.md; not yet run on one.
set -euo pipefail
budget=${1:-510}
steps=${2:-6000}
kit=${KIT:-runs/gpu}
out=${OUT:-$kit/out}
device=${DEVICE:-cuda}      # DEVICE=cpu BATCH=4 for a dry run of the mechanics on a CPU machine
batch=${BATCH:-64}
workers=${WORKERS:-12}
if [[ "${HINTS:-0}" == 1 ]]; then   # the decoder on simulated hints; BatchNorm statistics kept, no hint: the start's colors
    model_args=(--init-from assets/models/generator.safetensors --hint-inputs --keep-batchnorm --no-hint-teacher
                --encoder-lr-scale 0 --hint-count-p 0.2 --hint-p-none 0.25 --pixel-loss huber --lr 2e-4)
elif [[ "${HINTS:-0}" == 2 ]]; then  # also the encoder, fed the hints (model card, "Session 10": runs/v6h, far longer)
    model_args=(--init-from assets/models/generator.safetensors --hint-inputs --hint-encoder --keep-batchnorm
                --no-hint-teacher --no-hint-copies --encoder-lr-scale 0.5 --hint-count-p 0.2 --hint-p-none 0.25
                --pixel-loss huber --lr 2e-4)
else
    model_args=(--init-from assets/models/generator.safetensors --encoder-lr-scale 0.2 --lr 2e-4)
fi
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The trainer's pure-Python needs beyond torch and OpenCV, installed from the carried wheels.
python3 -m pip install -q --no-deps --no-index --target "$tmp/site" "$kit"/wheels/*.whl
# The package layout without installing it: colorizer.{trainer,exporter,desktop} map to top-level folders.
mkdir -p "$tmp/pkg/colorizer"
for f in colorizer/*.py; do ln -s "$PWD/$f" "$tmp/pkg/colorizer/"; done
for part in trainer exporter desktop; do ln -s "$PWD/$part" "$tmp/pkg/colorizer/$part"; done
export PYTHONPATH="$tmp/pkg:$tmp/site"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
# SIGTERM at the budget: the trainer saves a checkpoint and stops (exit 130), then the generator is written.
timeout -s TERM "$budget" python3 -m colorizer.trainer.cli "$kit/data" -o "$out/run" --generator effunet \
    "${model_args[@]}" --val-fraction 0 --device "$device" --batch-size "$batch" \
    --workers "$workers" --pretrain-steps "$steps" --gan-steps 0 --beta1 0.9 \
    --lr-schedule cosine --lr-final-scale 0.05 --ema-decay 0.999 --checkpoint-every 500 --log-every 100 \
    --old-photo sepia grain blur faded jpeg --old-photo-p 0.15 --quiet || status=$?
case ${status:-0} in   # the budget reached (124: timeout; 130/143: the trainer's own stop) still saves a checkpoint
    0|124|130|143) ;;
    *) echo "the trainer failed (exit $status): no generator written" >&2; exit "$status";;
esac
python3 - "$out" <<'PY'
import sys
from pathlib import Path
from colorizer.trainer.checkpoint import load_generator, save_generator_as
out = Path(sys.argv[1])
g = load_generator(out / "run" / "checkpoints" / "last.safetensors")
save_generator_as(out / "generator.safetensors", g, training_data=g.training_data + " (GPU run)", half=True)
print(f"generator of step {g.step} -> {out / 'generator.safetensors'}")
PY
cp "$out/run/train.log" "$out/run/metrics.jsonl" "$out/" 2>/dev/null || true
