"""Token corpora that need no download: the CPython standard library, text files, or
nanoGPT-style ``train.bin``/``val.bin``.

A corpus is two flat token arrays (train, validation) plus a summary recorded with every run
(source, SHA-256, sizes, Python version). Training reads the train array as a stream of
windows of ``seq_len + 1`` tokens, visited in a fixed pseudo-random order, so a run that
continues another (``data_position``) never repeats a window within an epoch.
"""

from __future__ import annotations

import hashlib
import math
import platform
import sysconfig
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from hpogrow.errors import UsageError

_EXCLUDED_DIRS = {"site-packages", "dist-packages", "test", "tests", "idle_test", "__pycache__"}
_VALIDATION_PERCENT = 5
_TEXT_SUFFIXES = {".txt", ".md", ".py", ".rst", ".json", ".csv", ".html", ".c", ".h", ".js"}


@dataclass(frozen=True)
class Corpus:
    """Train and validation tokens with a description of where they came from."""

    train: torch.Tensor = field(repr=False)
    """1-D integer tensor of training tokens."""
    validation: torch.Tensor = field(repr=False)
    """1-D integer tensor of held-out tokens."""
    summary: dict = field(default_factory=dict)
    """Source, SHA-256, token counts and Python version."""


def _is_validation(relative_path: str) -> bool:
    digest = hashlib.sha256(relative_path.encode()).digest()
    return int.from_bytes(digest[:4], "little") % 100 < _VALIDATION_PERCENT


def _files_corpus(root: Path, files: list[Path], source: str) -> Corpus:
    """Byte-level corpus from files, split by a hash of each file's relative path."""
    sha = hashlib.sha256()
    train_parts: list[bytes] = []
    validation_parts: list[bytes] = []
    for path in sorted(files):
        relative = path.relative_to(root).as_posix() if path != root else path.name
        data = path.read_bytes()
        sha.update(relative.encode() + b"\0" + data + b"\0")
        (validation_parts if _is_validation(relative) else train_parts).append(data)
    if not validation_parts:  # a single file or very few: hold out its last 5%
        joined = b"".join(train_parts)
        cut = len(joined) * (100 - _VALIDATION_PERCENT) // 100
        train_parts, validation_parts = [joined[:cut]], [joined[cut:]]

    def to_tensor(parts: list[bytes]) -> torch.Tensor:
        return torch.from_numpy(np.frombuffer(b"".join(parts), dtype=np.uint8).copy())

    train, validation = to_tensor(train_parts), to_tensor(validation_parts)
    return Corpus(train, validation, {
        "source": source, "files": len(files), "sha256": sha.hexdigest(),
        "train_tokens": int(train.numel()), "validation_tokens": int(validation.numel()),
        "vocab_size": 256, "python_version": platform.python_version(),
    })


@lru_cache(maxsize=4)
def load_corpus(data: str | None = None) -> Corpus:
    """Load the default corpus (``data=None``) or the user's file or folder.

    Args:
        data: ``None`` for the CPython standard library's ``.py`` source (byte-level, no
            download); a text file or a folder of text files (byte-level); or a folder holding
            nanoGPT-style ``train.bin`` and ``val.bin`` (uint16 tokens).
    """
    if data is None:
        root = Path(sysconfig.get_paths()["stdlib"])
        files = [p for p in root.rglob("*.py")
                 if not _EXCLUDED_DIRS.intersection(p.relative_to(root).parts[:-1])]
        return _files_corpus(root, files, f"cpython-stdlib:{root}")
    path = Path(data)
    if not path.exists():
        raise UsageError(f"--data {data}: no such file or folder; pass a text file, a folder of text files or a folder with train.bin/val.bin")
    if path.is_dir() and (path / "train.bin").exists():
        return _bin_corpus(path)
    if path.is_dir():
        files = [p for p in path.rglob("*") if p.is_file() and p.suffix in _TEXT_SUFFIXES]
        if not files:
            raise UsageError(f"--data {data}: the folder has no text files ({', '.join(sorted(_TEXT_SUFFIXES))}) and no train.bin")
        return _files_corpus(path, files, f"text:{path.resolve()}")
    return _files_corpus(path, [path], f"text:{path.resolve()}")


def _bin_corpus(folder: Path) -> Corpus:
    if not (folder / "val.bin").exists():
        raise UsageError(f"--data {folder}: train.bin found but val.bin is missing; write both as uint16 (nanoGPT's prepare.py)")
    sha = hashlib.sha256()
    arrays = []
    for name in ("train.bin", "val.bin"):
        tokens = np.memmap(folder / name, dtype=np.uint16, mode="r")
        sha.update(hashlib.sha256(tokens.tobytes()).digest())
        arrays.append(torch.from_numpy(tokens.astype(np.int32)))
    train, validation = arrays
    return Corpus(train, validation, {
        "source": f"bin:{folder.resolve()}", "sha256": sha.hexdigest(),
        "train_tokens": int(train.numel()), "validation_tokens": int(validation.numel()),
        "vocab_size": int(max(train.max(), validation.max())) + 1,
        "python_version": platform.python_version(),
    })


class WindowStream:
    """The ``position``-th window of ``seq_len + 1`` tokens of a token array, in a fixed
    pseudo-random order (an affine permutation ``i -> (a*i + b) mod n``, no memory needed).

    Positions past the number of windows wrap around (a new epoch repeats windows).
    """

    def __init__(self, tokens: torch.Tensor, seq_len: int, seed: int = 0) -> None:
        self.tokens = tokens
        self.seq_len = seq_len
        self.n_windows = (tokens.numel() - 1) // seq_len
        if self.n_windows < 1:
            raise UsageError(f"the corpus has {tokens.numel()} tokens, fewer than one sequence of {seq_len + 1}; use more data or a shorter --seq-len")
        multiplier = int(self.n_windows * 0.6180339887) | 1
        while math.gcd(multiplier, self.n_windows) != 1:
            multiplier += 2
        self.multiplier = multiplier
        self.offset = (seed * 7919) % self.n_windows
        self._arange = torch.arange(seq_len + 1)

    def windows(self, position: int, count: int) -> torch.Tensor:
        """Tokens of windows ``position .. position + count - 1``: ``(count, seq_len + 1)``."""
        index = torch.arange(position, position + count, dtype=torch.int64) % self.n_windows
        starts = (index * self.multiplier + self.offset) % self.n_windows * self.seq_len
        return self.tokens[starts[:, None] + self._arange].long()
