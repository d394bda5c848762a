"""Training throughput of the framework's GPT on one device: tokens/s and MFU.

    python benchmarks/gpu_check.py --strategy auto   # plain single-device training
    python benchmarks/gpu_check.py --strategy fsdp   # FSDP2 on one device (sharding code path)
    python benchmarks/gpu_check.py --compile         # torch.compile'd (benchmarks/gpu_gpt2.sh)
    python benchmarks/gpu_check.py --compile --host-loss-check   # the loss read on the host each step
    python benchmarks/gpu_check.py --compile --attention cudnn   # cuDNN's fused attention first

Trains the GPT-2 124M configuration (n_layer 12, n_head 12, n_embd 768, block_size 1024,
vocab 50304) through the framework's task, DataModule and Lightning Trainer on random token ids
(throughput does not depend on the text), in bf16-mixed with fused AdamW on CUDA. The first
``--warmup`` steps are not timed. Prints the median step time, tokens/s and MFU against the
device's dense bf16 peak FLOP/s (the data sheet's for GPUs, ``gpu_peak_flops``; a measured
bf16 matmul on CPU). Steps are timed in windows of ``--window`` steps with the device
synchronised only at window boundaries, so the host keeps queueing work ahead of the GPU.
FLOPs per token are the framework's (``GPT.flops_per_token``: 6 N plus 12 n_layer n_embd
block_size, PaLM appendix B).

``--host-loss-check`` reads each step's loss on the host to check it is finite (what the task
does off CUDA) instead of the device-side check (``framework.callbacks.nonfinite``), to measure what
that read costs. ``--attention cudnn`` puts cuDNN's attention kernel ahead of FlashAttention-2 in
SDPA's choice. ``--profile-steps N`` then runs N more steps under ``torch.profiler`` and prints
the GPU time of their kernels by kind (matrix products, attention, Inductor's fused Triton
kernels, the rest) and the slowest kernels.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import numpy as np
import pytorch_lightning as pl
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from framework.callbacks import NonFiniteLossGuard
from framework.callbacks.throughput import flops_per_token, gpu_peak_flops, measured_matmul_flops
from framework.data import LanguageModelingDataModule
from framework.models import GPT
from framework.strategy import FSDP2Strategy
from framework.tasks import LanguageModelingTask


class HostLossCheck(NonFiniteLossGuard):
    """The non-finite loss guard with its per-step host read of the loss, as off CUDA."""

    @staticmethod
    def uses_device_check(trainer, pl_module, optimizer) -> bool:
        return False


class StepTimer(pl.Callback):
    """Mean wall time per optimizer step over each window of ``window`` steps after the first
    ``warmup`` and before step ``until``; CUDA is synchronised only at window boundaries."""

    def __init__(self, warmup: int, window: int, until: int) -> None:
        self.warmup, self.window, self.until, self.seconds, self._start = warmup, window, until, [], 0.0

    def _now(self, module: pl.LightningModule) -> float:
        if module.device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        done = batch_idx + 1 - self.warmup
        if batch_idx >= self.until:
            return
        if done == 0:
            self._start = self._now(module)
        elif done > 0 and done % self.window == 0:
            now = self._now(module)
            self.seconds.append((now - self._start) / self.window)
            self._start = now


# Substrings of CUDA kernel names, by kind (cuBLAS's Hopper kernels are named nvjet_* or sm90_xmma_*).
KERNEL_KINDS = {
    "matrix products": ("gemm", "nvjet", "xmma", "cutlass"),
    "attention": ("flash", "fmha", "attention"),
    "Inductor's fused Triton kernels": ("triton",),
}


class KernelProfile(pl.Callback):
    """GPU kernel time of steps ``first`` to ``first + steps - 1`` (0-based), by kind."""

    def __init__(self, first: int, steps: int) -> None:
        self.first, self.steps = first, steps
        self.profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA])

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        if batch_idx == self.first:
            self.profiler.start()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if batch_idx == self.first + self.steps - 1:
            torch.cuda.synchronize()
            self.profiler.stop()

    def report(self) -> str:
        kernels = [(event.key, event.self_device_time_total) for event in self.profiler.key_averages() if event.self_device_time_total > 0]
        total = sum(microseconds for _, microseconds in kernels)
        by_kind = {kind: 0.0 for kind in [*KERNEL_KINDS, "other"]}
        for name, microseconds in kernels:
            kind = next((kind for kind, parts in KERNEL_KINDS.items() if any(part in name.lower() for part in parts)), "other")
            by_kind[kind] += microseconds
        lines = [f"GPU kernel time per step: {total / self.steps / 1000:.1f} ms"]
        lines += [
            f"  {kind}: {microseconds / self.steps / 1000:.1f} ms ({microseconds / total:.0%})" for kind, microseconds in by_kind.items()
        ]
        lines += ["slowest kernels (ms per step):"]
        lines += [
            f"  {microseconds / self.steps / 1000:7.2f}  {name[:110]}" for name, microseconds in sorted(kernels, key=lambda k: -k[1])[:15]
        ]
        return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--strategy", choices=["auto", "fsdp"], default="auto")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--window", type=int, default=20, help="steps per timed window")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--n-layer", type=int, default=12)
    parser.add_argument("--n-head", type=int, default=12)
    parser.add_argument("--n-embd", type=int, default=768)
    parser.add_argument("--block-size", type=int, default=1024)
    parser.add_argument("--vocab-size", type=int, default=50304)
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument("--host-loss-check", action="store_true", help="read each step's loss on the host")
    parser.add_argument("--profile-steps", type=int, default=0, help="steps to profile after the timed ones (CUDA)")
    parser.add_argument("--attention", choices=["default", "cudnn"], default="default", help="SDPA's first choice of kernel")
    args = parser.parse_args()
    if args.steps - args.warmup < args.window:
        parser.error(f"--steps {args.steps} leaves fewer than one --window of {args.window} steps after --warmup {args.warmup}.")

    cuda = torch.cuda.is_available()
    torch.set_float32_matmul_precision("high")
    model = GPT(vocab_size=args.vocab_size, block_size=args.block_size, n_layer=args.n_layer, n_head=args.n_head, n_embd=args.n_embd)
    optimizer = {"_target_": "torch.optim.AdamW", "lr": 6e-4, "weight_decay": 0.1, "betas": [0.9, 0.95], "fused": cuda}
    scheduler = {"_target_": "framework.optim.constant", "warmup_steps": 0}
    task = LanguageModelingTask(model, optimizer=optimizer, scheduler=scheduler, compile_model=args.compile)
    guard = HostLossCheck() if args.host_loss_check else NonFiniteLossGuard()
    tokens = np.random.default_rng(0).integers(0, args.vocab_size, size=20_000_000, dtype=np.uint32)
    data = LanguageModelingDataModule(
        tokens,
        tokens[:100_000],
        block_size=args.block_size,
        batch_size=args.batch_size,
        num_train_samples=(args.steps + args.profile_steps) * args.batch_size,
        seed=0,
    )
    timer = StepTimer(args.warmup, args.window, until=args.steps)
    profile = KernelProfile(first=args.steps, steps=args.profile_steps) if cuda and args.profile_steps else None
    trainer = pl.Trainer(
        accelerator="gpu" if cuda else "cpu",
        devices=1,
        max_steps=args.steps + args.profile_steps,
        limit_val_batches=0,
        precision="bf16-mixed",
        strategy=FSDP2Strategy() if args.strategy == "fsdp" else "auto",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer, guard] + ([profile] if profile else []),
    )
    attention = (
        sdpa_kernel(
            [SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH], set_priority=True
        )
        if args.attention == "cudnn"
        else contextlib.nullcontext()
    )
    with attention:
        trainer.fit(task, datamodule=data)

    step_seconds = statistics.median(timer.seconds)
    tokens_per_second = args.batch_size * args.block_size / step_seconds
    device = torch.cuda.get_device_name() if cuda else "cpu"
    peak = gpu_peak_flops(torch.device("cuda"), torch.bfloat16) if cuda else measured_matmul_flops(torch.bfloat16)
    mfu = f"{flops_per_token(model) * tokens_per_second / peak:.1%}" if peak else "n/a (no peak for this device)"
    print(
        f"strategy={args.strategy} compile={args.compile} loss_check={'device' if guard.device_guard is not None else 'host'} attention={args.attention} device={device} params={model.num_parameters():,} batch={args.batch_size}x{args.block_size} "
        f"steps timed={len(timer.seconds) * args.window} median step={step_seconds * 1000:.1f} ms tokens/s={tokens_per_second:,.0f} MFU={mfu}"
    )
    if profile:
        print(profile.report())


if __name__ == "__main__":
    main()
