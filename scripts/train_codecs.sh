#!/usr/bin/env bash
# Train the built-in semantic codecs for edsc-faces64 (sequential, one CPU thread each; resumable).
# Usage: scripts/train_codecs.sh [k ...]     (default: 128 64 32 250; 128 is the default codec)
# Steps: STEPS (default 1620) of which WARMUP (default 1500) latent + Gauss-Newton-image steps, the rest true image loss.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1
for k in "${@:-128 64 32 250}"; do
  for kk in $k; do
    .venv/bin/edsc train codec --k "$kk" --generator edsc-faces64 --steps "${STEPS:-1620}" --warmup-steps "${WARMUP:-1500}" \
      --threads 1 --seed 0 --quiet --workdir "runs/codec-faces64-k$kk"
  done
done
