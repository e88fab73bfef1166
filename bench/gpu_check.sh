#!/usr/bin/env bash
# GPU check of bla_core at paper scale (see bench/gpu_check.py): feature extraction images/s, the
# 5-method protocol from the cache in seconds per run, and the projection for 3 datasets × 5 methods
# × 20 runs. Fits in 8 minutes on one H100/H200; `--small` runs the same steps on a CPU.
# Needs only python3 with torch, torchvision, timm, numpy, pandas, scipy, matplotlib, pillow, tqdm.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec "${PYTHON:-python3}" bench/gpu_check.py "$@"
