"""Model FLOPs per token and model FLOPs utilisation (MFU) against a GPU's peak.

MFU = achieved model FLOPs per second / the device's peak dense bf16 tensor FLOPs per second.
Model FLOPs count the work the model needs, not what the hardware did (no recomputation):
``6·N`` per token for the matmuls of the ``N`` non-embedding parameters, plus, for the GPT,
``12·depth·seq_len·width`` for attention scores and values (PaLM, appendix B).
"""

from __future__ import annotations

import torch
from torch import nn

from hpogrow.parametrize import count_parameters

PEAK_BF16_TFLOPS: tuple[tuple[str, float], ...] = (
    # substring of torch.cuda.get_device_name(), peak dense bf16 tensor-core TFLOP/s (vendor data
    # sheets); more specific names first ("H100 PCIe" before "H100", "A100" before "A10").
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.0),
    ("H200", 989.0),
    ("GH200", 989.0),
    ("A100", 312.0),
    ("L40S", 362.0),
    ("L4", 121.0),
    ("A10", 125.0),
)


def peak_tflops(device_name: str) -> float | None:
    """Peak dense bf16 TFLOP/s of a GPU named like ``torch.cuda.get_device_name()``; ``None``
    when the name is not in :data:`PEAK_BF16_TFLOPS` (pass the figure yourself then)."""
    for pattern, tflops in PEAK_BF16_TFLOPS:
        if pattern.lower() in device_name.lower():
            return tflops
    return None


def training_flops(compute_params: int, tokens: int) -> float:
    """``6·N·D``: training FLOPs of ``tokens`` tokens through ``compute_params`` matmul parameters
    (the papers' count; it leaves out attention scores, see :func:`training_flops_per_token`)."""
    return 6.0 * compute_params * tokens


def training_flops_per_token(model: nn.Module) -> float:
    """Forward plus backward model FLOPs per token: ``6·N`` (+ attention for the GPT).

    Example::

        >>> from hpogrow.tasks import LanguageTask
        >>> from hpogrow.parametrize import build_model
        >>> model = build_model(LanguageTask(depth=2, head_size=16, seq_len=64), 32, 32, seed=0)
        >>> training_flops_per_token(model) == 6 * count_parameters(model).compute + 12 * 2 * 64 * 32
        True
    """
    flops = 6.0 * count_parameters(model).compute
    config = getattr(model, "config", None)
    if all(hasattr(config, name) for name in ("seq_len", "depth", "width", "head_size")):
        flops += 12.0 * config.depth * config.seq_len * config.width
    return flops


def model_flops_utilization(flops_per_token: float, tokens_per_second: float, device: torch.device | str,
                            peak: float | None = None) -> float | None:
    """MFU of a run on ``device``; ``None`` off CUDA or for an unknown GPU without ``peak``.

    Args:
        peak: peak TFLOP/s to divide by; default: looked up from the device name.
    """
    device = torch.device(device)
    if device.type != "cuda":
        return None
    peak = peak or peak_tflops(torch.cuda.get_device_name(device))
    if not peak:
        return None
    return flops_per_token * tokens_per_second / (peak * 1e12)
