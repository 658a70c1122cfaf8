"""Windows of a split and the order a run's stream reads them in (hpogrow/data/windows.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hpogrow.data.windows import TokenArray, WindowReader, WindowStream
from hpogrow.errors import UsageError


class Endless(WindowReader):
    """A split that never runs out: window i is ``i`` repeated."""

    def window_count(self, seq_len: int) -> None:
        return None

    def read(self, indices: np.ndarray, seq_len: int) -> np.ndarray:
        return np.repeat(indices[:, None], seq_len + 1, axis=1).astype(np.int64)


def test_neighbouring_windows_share_one_token():
    tokens = TokenArray(np.arange(10, dtype=np.uint16))
    assert len(tokens) == 10 and tokens.window_count(3) == 3  # (10 - 1) // 3
    windows = tokens.read(np.array([0, 1, 2]), 3)
    assert windows.dtype == np.int64
    assert windows.tolist() == [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]]


@pytest.mark.parametrize("windows", [1, 2, 7, 30, 64])
def test_a_pass_visits_every_window_once_then_repeats_in_the_same_order(windows):
    stream = WindowStream(TokenArray(np.arange(windows * 4 + 1)), seq_len=4, seed=3)
    first = stream.indices(0, windows)
    assert sorted(first.tolist()) == list(range(windows))
    assert stream.indices(windows, windows).tolist() == first.tolist()
    assert stream.indices(5, 3).tolist() == stream.indices(0, 8)[5:].tolist()  # a function of the position


def test_the_order_is_shuffled_and_depends_on_the_seed():
    reader = TokenArray(np.arange(101))
    orders = [WindowStream(reader, seq_len=1, seed=seed).indices(0, 100).tolist() for seed in (0, 0, 1)]
    assert orders[0] == orders[1] != orders[2]
    assert orders[0] != list(range(100))


def test_an_endless_split_is_read_in_order():
    stream = WindowStream(Endless(), seq_len=2, seed=5)
    assert stream.n_windows is None
    assert stream.indices(1000, 3).tolist() == [1000, 1001, 1002]
    assert stream.windows(7, 2).tolist() == [[7, 7, 7], [8, 8, 8]]


def test_too_little_data_for_one_sequence_names_the_flag():
    with pytest.raises(UsageError, match="--seq-len"):
        WindowStream(TokenArray(np.arange(4)), seq_len=4)


def test_windows_are_cpu_tensors_whatever_the_default_device():
    stream = WindowStream(TokenArray(np.arange(33)), seq_len=4)
    with torch.device("meta"):
        windows = stream.windows(0, 3)
    assert windows.device.type == "cpu" and windows.shape == (3, 5) and windows.dtype == torch.int64
    assert (windows[:, 1:] - windows[:, :-1] == 1).all()  # consecutive tokens
