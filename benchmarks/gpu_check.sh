#!/usr/bin/env bash
# GPU check for distributed training (needs one CUDA GPU): GPT-2 124M in bf16, first plain
# single-device training, then FSDP2 on the same GPU. Prints tokens/s and MFU for each.
#   bash benchmarks/gpu_check.sh            (from the project root, with the venv's python)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
"$PYTHON" benchmarks/gpu_check.py --strategy auto "$@"
"$PYTHON" benchmarks/gpu_check.py --strategy fsdp "$@"
