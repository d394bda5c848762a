"""Training throughput and model FLOPs utilisation, logged as ``perf/tokens_per_sec`` and ``perf/mfu``."""

from __future__ import annotations

import logging
import time

import pytorch_lightning as pl
import torch
from lightning_fabric.utilities.throughput import Throughput, get_available_flops
from torch import nn

from framework.models.flops import multiplying_parameters

log = logging.getLogger(__name__)


def flops_per_token(model: nn.Module) -> float:
    """Training FLOPs per token (forward and backward): the model's own ``flops_per_token()``
    when it has one (the Transformers add their attention term), else 6 N for its N parameters
    that multiply each token (:func:`framework.models.flops.multiplying_parameters`)."""
    own = getattr(model, "flops_per_token", None)
    return float(own()) if callable(own) else 6.0 * multiplying_parameters(model)


def measured_matmul_flops(dtype: torch.dtype, size: int = 1024, repeats: int = 5) -> float:
    """FLOP/s of the fastest of ``repeats`` ``size`` x ``size`` matmuls in ``dtype`` on this CPU
    with the current torch threads: the CPU's practical peak, for MFU."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    torch.mm(a, b)  # warm-up
    fastest = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        fastest = min(fastest, time.perf_counter() - start)
    return 2 * size**3 / fastest


# Dense FLOP/s of the H200, which Lightning's table misses: it matches only names with "sxm1" or
# "nvl1" (CUDA calls the SXM part plain "NVIDIA H200") and lists the data sheet's with-sparsity
# figures, twice the dense ones MFU is measured against (NVIDIA H200 data sheet, 2024).
H200_DENSE_FLOPS = {
    "nvl": {torch.float32: 60e12, "tfloat32": 417.5e12, torch.bfloat16: 835.5e12, torch.float16: 835.5e12},
    "sxm": {torch.float32: 67e12, "tfloat32": 494.7e12, torch.bfloat16: 989.4e12, torch.float16: 989.4e12},
}


def gpu_peak_flops(device: torch.device, dtype: torch.dtype | str) -> float | None:
    """Dense data-sheet FLOP/s of one CUDA device in ``dtype`` (``"tfloat32"`` for TF32): the H200
    from :data:`H200_DENSE_FLOPS`, others from Lightning's ``get_available_flops`` table; None for
    a device neither knows."""
    name = torch.cuda.get_device_name(device).lower()
    if "h200" in name:
        if dtype == torch.float32 and torch.get_float32_matmul_precision() != "highest":
            dtype = "tfloat32"  # float32 matmuls then run on the tensor cores, as Lightning assumes
        return H200_DENSE_FLOPS["nvl" if "nvl" in name else "sxm"].get(dtype)
    return get_available_flops(device, dtype)


def compute_dtype(precision: str) -> torch.dtype:
    """The matmul dtype of a Lightning precision setting (``bf16-mixed`` -> bfloat16, ...)."""
    return {"bf16": torch.bfloat16, "16": torch.float16}.get(str(precision).split("-")[0], torch.float32)


class ThroughputLogger(pl.Callback):
    """Log ``perf/tokens_per_sec`` (all processes together) and ``perf/mfu`` (per device: achieved
    training FLOP/s over the peak) every ``trainer.log_every_n_steps`` optimizer steps.

    Throughput is measured between logging points over wall time, validation excluded, so it
    includes data loading, the optimizer and logging; CUDA is synchronised only at those points.
    Computation and the GPU peak table are Lightning's (``lightning_fabric.utilities.throughput``).

    Args:
        peak_flops: FLOP/s of one device for MFU. None: the data-sheet dense figure for the GPU
            and the run's precision (:func:`gpu_peak_flops`: A100, H100, H200, ...), or on CPU a
            short measured matmul
            (:func:`measured_matmul_flops`), since CPUs have no data-sheet figure.
    """

    def __init__(self, peak_flops: float | None = None) -> None:
        self.peak_flops = peak_flops
        self.throughput: Throughput | None = None  # set when training starts

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        device, dtype = pl_module.device, compute_dtype(trainer.precision)
        peak, self.peak_origin = self.peak_flops, "callbacks.throughput.peak_flops"
        if peak is None and device.type == "cuda":
            peak = gpu_peak_flops(device, dtype)
            self.peak_origin = f"the data-sheet figure for {torch.cuda.get_device_name(device)} in {dtype}"
        elif peak is None:
            peak = measured_matmul_flops(dtype)
            self.peak_origin = "a 1024 x 1024 matmul measured as training started, too low when other processes used the cores then"
        self.peak, self.warned_above_one = peak, not trainer.is_global_zero  # one warning per run
        self.throughput = Throughput(available_flops=peak, world_size=trainer.world_size, window_size=2)
        self.flops_per_token = flops_per_token(pl_module.model)
        self.tokens = self.batches = self.tokens_at_update = 0
        self.elapsed, self.clock_start = 0.0, time.perf_counter()

    def _now(self, pl_module: pl.LightningModule) -> float:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)
        return self.elapsed + time.perf_counter() - self.clock_start

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch, batch_idx: int) -> None:
        tokens = batch[0].numel()  # (B, T) inputs, padding included
        self.tokens += tokens
        self.batches += 1
        step_done = (batch_idx + 1) % trainer.accumulate_grad_batches == 0
        if not step_done or trainer.global_step % trainer.log_every_n_steps:
            return
        self.throughput.update(
            time=self._now(pl_module),
            batches=self.batches,
            samples=self.batches * len(batch[0]),
            lengths=self.tokens,
            flops=int(self.flops_per_token * (self.tokens - self.tokens_at_update)),
        )
        self.tokens_at_update = self.tokens
        metrics = self.throughput.compute()
        if "device/items_per_sec" in metrics:
            logged = {"perf/tokens_per_sec": metrics["device/items_per_sec"] * trainer.world_size}
            if "device/mfu" in metrics:
                logged["perf/mfu"] = metrics["device/mfu"]
                if metrics["device/mfu"] > 1 and not self.warned_above_one:
                    self.warned_above_one = True
                    log.warning(self._above_one(metrics["device/mfu"]))
            pl_module.log_dict(logged, on_step=True, on_epoch=False, rank_zero_only=True)

    def _above_one(self, mfu: float) -> str:
        return (
            f"perf/mfu is {mfu:.2f}, above 1: the peak it divides by, {self.peak / 1e9:,.1f} GFLOP/s per device, is "
            f"below what this run achieves ({self.peak_origin}). Give the device's peak with callbacks.throughput.peak_flops=<FLOP/s> "
            "to make perf/mfu comparable between runs."
        )

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.state.fn == "fit" and self.throughput is not None:
            self.elapsed = self._now(pl_module)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.state.fn == "fit" and self.throughput is not None:
            self.clock_start = time.perf_counter()
