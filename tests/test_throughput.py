"""Model FLOPs per token and MFU: peak lookup by GPU name, the GPT's attention term, CPU gives none."""

from __future__ import annotations

import pytest

from hpogrow.parametrize import build_model, count_parameters
from hpogrow.throughput import model_flops_utilization, peak_tflops, training_flops_per_token


@pytest.mark.parametrize(("name", "peak"), [("NVIDIA H100 80GB HBM3", 989.0), ("NVIDIA H100 PCIe", 756.0),
                                            ("NVIDIA H200", 989.0), ("NVIDIA A100-SXM4-80GB", 312.0),
                                            ("NVIDIA A10", 125.0), ("NVIDIA L40S", 362.0), ("NVIDIA L4", 121.0),
                                            ("Some Future GPU", None)])
def test_peak_is_looked_up_by_the_most_specific_name(name, peak):
    assert peak_tflops(name) == peak


def test_flops_per_token_adds_attention_for_the_gpt_only(lm_task, mlp_task):
    gpt = build_model(lm_task, 16, 16, seed=0)
    attention = 12 * lm_task.depth * lm_task.seq_len * 16
    assert training_flops_per_token(gpt) == 6 * count_parameters(gpt).compute + attention
    mlp = build_model(mlp_task, 16, 16, seed=0)
    assert training_flops_per_token(mlp) == 6 * count_parameters(mlp).total


def test_mfu_is_reported_on_cuda_only():
    assert model_flops_utilization(1e9, 1e4, "cpu", peak=100.0) is None
