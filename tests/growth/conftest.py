from __future__ import annotations

import pytest
import torch

from .helpers import float64 as _float64


@pytest.fixture
def float64():
    """Models built inside the test are float64."""
    with _float64():
        yield


@pytest.fixture
def one_thread():
    """Tiny models train fastest on one thread: two threads on a busy 2-core machine mostly wait."""
    torch.set_num_threads(1)
    yield
