from __future__ import annotations

import pytest
import torch

from hpogrow.tasks import FourierTask, LanguageTask


@pytest.fixture(autouse=True)
def _deterministic_threads():
    torch.set_num_threads(2)
    yield


@pytest.fixture
def mlp_task() -> FourierTask:
    """The residual MLP on a cheap Fourier target (256 modes)."""
    return FourierTask(depth=2, modes=256, eval_examples=512)


@pytest.fixture
def lm_task() -> LanguageTask:
    """A tiny GPT (head size 8, one block, 16-token context) on the standard-library corpus."""
    return LanguageTask(depth=1, head_size=8, seq_len=16, eval_tokens=512)
