"""Reading a split of a corpus as windows of ``seq_len + 1`` tokens, in a fixed order.

A :class:`WindowReader` knows how to read windows by index (an array in memory, a token file on
disk, a generated stream); a :class:`WindowStream` decides which window comes at which position of
a run's stream. Everything here is NumPy until the last step, ``torch.from_numpy``, which always
makes a CPU tensor: reading data never depends on the caller's default device (inside
``torch.device("meta")``, factory functions such as ``torch.arange`` would make meta tensors).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import numpy as np
import torch

from hpogrow.errors import UsageError


class WindowReader(ABC):
    """Windows of a train or validation split, by index: window ``i`` of a finite split starts at
    token ``i * seq_len`` (neighbours share one token: the last target of one is the first input
    of the next, so every token is predicted once per pass)."""

    @abstractmethod
    def window_count(self, seq_len: int) -> int | None:
        """Windows of ``seq_len + 1`` tokens in the split; ``None`` when it never runs out."""

    @abstractmethod
    def read(self, indices: np.ndarray, seq_len: int) -> np.ndarray:
        """Windows ``indices`` (``(B,)`` int64): ``(B, seq_len + 1)`` int64 tokens."""


class TokenArray(WindowReader):
    """Tokens held in memory (text corpora: one byte per token)."""

    def __init__(self, tokens: np.ndarray) -> None:
        self.tokens = tokens  # (N,)

    def __len__(self) -> int:
        return int(self.tokens.shape[0])

    def window_count(self, seq_len: int) -> int:
        return (len(self) - 1) // seq_len

    def read(self, indices: np.ndarray, seq_len: int) -> np.ndarray:
        starts = indices * seq_len  # (B,)
        return self.tokens[starts[:, None] + np.arange(seq_len + 1)].astype(np.int64)


class WindowStream:
    """The ``position``-th window of a split for a run's stream.

    A finite split is visited in a fixed pseudo-random order (an affine permutation
    ``i -> (a*i + b) mod n``, no memory needed); positions past the last window wrap around, so a
    new pass repeats windows (the token-supply check refuses plans that would get there). A split
    that never runs out is read in order: its windows are independent draws already.
    """

    def __init__(self, reader: WindowReader, seq_len: int, seed: int = 0) -> None:
        self.reader = reader
        self.seq_len = seq_len
        self.n_windows = reader.window_count(seq_len)
        if self.n_windows is not None and self.n_windows < 1:
            raise UsageError(f"the data has fewer tokens than one sequence of {seq_len + 1}; "
                             "use more data or a shorter --seq-len")
        self.multiplier, self.offset = 1, 0
        if self.n_windows is not None:
            multiplier = int(self.n_windows * 0.6180339887) | 1
            while math.gcd(multiplier, self.n_windows) != 1:
                multiplier += 2
            self.multiplier, self.offset = multiplier, (seed * 7919) % self.n_windows

    def indices(self, position: int, count: int) -> np.ndarray:
        """Window indices at stream positions ``position .. position + count - 1``: ``(count,)``."""
        positions = np.arange(position, position + count, dtype=np.int64)
        if self.n_windows is None:
            return positions
        return (positions % self.n_windows * self.multiplier + self.offset) % self.n_windows

    def windows(self, position: int, count: int) -> torch.Tensor:
        """Tokens of the windows at positions ``position .. position + count - 1``:
        ``(count, seq_len + 1)`` int64 on the CPU, whatever the default device."""
        return torch.from_numpy(self.reader.read(self.indices(position, count), self.seq_len))
