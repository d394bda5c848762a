#!/usr/bin/env bash
# GPT-2 124M (n_layer 12, n_head 12, n_embd 768, block 1024) on one CUDA GPU: bf16-mixed,
# torch.compile, fused AdamW, flash attention through SDPA, batch 64 x 1024, 300 steps on random tokens.
# Prints tokens/s and MFU against the GPU's bf16 peak (goal: at least 50 % on an H100/H200).
#   bash benchmarks/gpu_gpt2.sh [--batch-size 32 --steps 300 --profile-steps 5]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
"$PYTHON" benchmarks/gpu_check.py --strategy auto --compile --batch-size 64 "$@"
