#!/usr/bin/env bash
# GPU check of bla_core at paper scale (see bench/gpu_check.py): feature extraction images/s, the
# 5-method protocol from the cache in seconds per run, and the projection for 3 datasets × 5 methods
# × 20 runs. Fits in 8 minutes on one H100/H200; `--small` runs the same steps on a CPU.
# Needs a python with torch, torchvision, timm, numpy, pandas, scipy, matplotlib, pillow, tqdm:
# $PYTHON if set (e.g. PYTHON=python3 on a GPU image that has them), else the project's .venv,
# else python3.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
"$PYTHON" -c 'import torch, torchvision, timm' 2>/dev/null || {
  echo "gpu_check: $PYTHON lacks torch, torchvision or timm; run 'make venv' or set PYTHON=/path/to/python" >&2
  exit 2
}
exec "$PYTHON" bench/gpu_check.py "$@"
