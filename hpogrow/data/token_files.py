"""Token files: nanoGPT's ``train.bin``/``val.bin`` (and single large text files), memory-mapped
and read window by window, never loaded whole.

Memory does not grow with the file: each read maps the file, copies the requested windows and
unmaps it again (as nanoGPT's ``get_batch`` does), so the pages a run touches are not kept in
its resident set. The vocabulary comes from nanoGPT's ``meta.pkl`` or ``--vocab-size``, never
from a scan of the tokens; a folder with neither (as nanoGPT's own ``openwebtext/prepare.py``
writes it) holds GPT-2 BPE tokens, as nanoGPT's ``train.py`` assumes: :data:`GPT2_VOCAB_SIZE`.

A file is identified by a *fingerprint*, not a full hash: SHA-256 over its size and
:data:`FINGERPRINT_BLOCKS` blocks of :data:`FINGERPRINT_BLOCK_BYTES` bytes spread evenly over it
(the first and last included). It changes when the file is replaced, grows, shrinks or is
rewritten in any sampled block, costs milliseconds for a file of any size, and is recorded as
``fingerprint`` (a file smaller than the samples together is hashed whole and recorded as
``sha256``). SHA-256 runs at about 0.5 GB/s on the 2-core machine this was written on: a full
hash of OpenWebText's 18 GB ``train.bin`` would cost half a minute at every start, in every
Ray worker.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path

import numpy as np

from hpogrow.data.windows import WindowReader
from hpogrow.errors import UsageError

DTYPES = {"uint16": np.uint16, "uint32": np.uint32}
"""Token types of ``--dtype`` (nanoGPT writes uint16; vocabularies above 65,536 need uint32)."""
_ALL_DTYPES = {**DTYPES, "uint8": np.uint8}  # uint8: a text file read byte by byte
GPT2_VOCAB_SIZE = 50257
"""The vocabulary of a token folder without ``meta.pkl``: GPT-2's BPE, which nanoGPT's
``train.py`` assumes there too (it pads its model to 50,304; ``--vocab-size 50304`` does the same)."""
GPT2_ORIGIN = "GPT-2 BPE, assumed without meta.pkl"
"""``vocab_from`` of a folder whose vocabulary was assumed."""
FINGERPRINT_BLOCKS = 64
FINGERPRINT_BLOCK_BYTES = 1 << 16
FINGERPRINT_METHOD = (f"SHA-256 over each file's size and {FINGERPRINT_BLOCKS} blocks of "
                      f"{FINGERPRINT_BLOCK_BYTES // 1024} KiB spread evenly over it (first and last included)")


class TokenFile(WindowReader):
    """Tokens ``first .. first + count - 1`` of a flat binary file of ``dtype`` integers."""

    def __init__(self, path: Path, dtype: str, first: int = 0, count: int | None = None,
                 vocab_size: int | None = None) -> None:
        self.path, self.dtype, self.first = Path(path), np.dtype(_ALL_DTYPES[dtype]), first
        self.count = count if count is not None else self.path.stat().st_size // self.dtype.itemsize - first
        self.vocab_size = vocab_size
        """Tokens at or above it are reported as a usage error (they would crash the embedding)."""

    def __len__(self) -> int:
        return self.count

    def window_count(self, seq_len: int) -> int:
        return (self.count - 1) // seq_len

    def read(self, indices: np.ndarray, seq_len: int) -> np.ndarray:
        starts = indices * seq_len  # (B,)
        mapped = np.memmap(self.path, dtype=self.dtype, mode="r", offset=self.first * self.dtype.itemsize,
                           shape=(self.count,))
        windows = mapped[starts[:, None] + np.arange(seq_len + 1)].astype(np.int64)  # (B, T+1), a copy
        del mapped  # unmapped here: the pages read do not stay in this process's resident set
        if self.vocab_size is not None and windows.size and int(windows.max()) >= self.vocab_size:
            raise UsageError(f"{self.path} holds token {int(windows.max())}, outside the vocabulary of "
                             f"{self.vocab_size}; pass the right --vocab-size (or --dtype uint32 if the file was written so)")
        return windows


def token_count(path: Path, dtype: str) -> int:
    """Tokens in ``path``; a one-line error unless its size is a whole number of ``dtype``."""
    size, itemsize = path.stat().st_size, np.dtype(_ALL_DTYPES[dtype]).itemsize
    if size % itemsize:
        raise UsageError(f"{path} has {size:,} bytes, not a whole number of {dtype} tokens ({itemsize} bytes each); "
                         "check --dtype (uint16 or uint32) and that the file holds tokens")
    return size // itemsize


def token_folder_vocabulary(folder: Path, vocab_size: int | None, dtype: str) -> tuple[int, str]:
    """The vocabulary of a nanoGPT folder and where it came from: ``meta.pkl``'s ``vocab_size``,
    or ``vocab_size`` (``--vocab-size``, which may pad it: nanoGPT pads GPT-2's 50,257 to 50,304),
    or else GPT-2's :data:`GPT2_VOCAB_SIZE` (what nanoGPT assumes without ``meta.pkl``)."""
    meta_path = folder / "meta.pkl"
    from_meta = None
    if meta_path.exists():
        with meta_path.open("rb") as handle:
            from_meta = pickle.load(handle).get("vocab_size")
    if vocab_size is not None and from_meta is not None and vocab_size < from_meta:
        raise UsageError(f"--vocab-size {vocab_size} is smaller than {from_meta} in {meta_path}; drop it or raise it")
    if vocab_size is not None:
        resolved, origin = vocab_size, "--vocab-size"
    elif from_meta is not None:
        resolved, origin = int(from_meta), "meta.pkl"
    else:
        resolved, origin = GPT2_VOCAB_SIZE, GPT2_ORIGIN
    if resolved > np.iinfo(DTYPES[dtype]).max + 1:
        raise UsageError(f"a vocabulary of {resolved:,} does not fit {dtype} tokens; pass --dtype uint32 "
                         "(and write the files as uint32)")
    return resolved, origin


def file_identity(paths: list[Path]) -> dict[str, str]:
    """``{"sha256": …}`` of the files' whole content when that is small, else
    ``{"fingerprint": …, "fingerprint_method": …}`` over sizes and sampled blocks."""
    sizes = [path.stat().st_size for path in paths]
    digest = hashlib.sha256()
    if sum(sizes) <= FINGERPRINT_BLOCKS * FINGERPRINT_BLOCK_BYTES * len(paths):
        for path in paths:
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
        return {"sha256": digest.hexdigest()}
    for path, size in zip(paths, sizes):
        digest.update(f"{path.name}\0{size}\0".encode())
        last = max(0, size - FINGERPRINT_BLOCK_BYTES)
        with path.open("rb") as handle:
            for block in range(FINGERPRINT_BLOCKS):
                handle.seek(last * block // (FINGERPRINT_BLOCKS - 1))
                digest.update(handle.read(FINGERPRINT_BLOCK_BYTES))
    return {"fingerprint": digest.hexdigest(), "fingerprint_method": FINGERPRINT_METHOD}


def token_folder(folder: Path, vocab_size: int | None, dtype: str) -> tuple[TokenFile, TokenFile, dict]:
    """Train and validation readers of a folder with ``train.bin`` and ``val.bin``, and its summary."""
    if not (folder / "val.bin").exists():
        raise UsageError(f"--data {folder}: train.bin found but val.bin is missing; write both "
                         "(nanoGPT's prepare.py does)")
    vocab, origin = token_folder_vocabulary(folder, vocab_size, dtype)
    paths = [folder / "train.bin", folder / "val.bin"]
    counts = [token_count(path, dtype) for path in paths]
    train, validation = (TokenFile(path, dtype, 0, count, vocab) for path, count in zip(paths, counts))
    summary = {"source": f"token-files:{folder.resolve()}", "kind": "token-files", "dtype": dtype,
               "vocab_size": vocab, "vocab_from": origin, "train_tokens": counts[0], "validation_tokens": counts[1],
               "train_bytes": os.path.getsize(paths[0]), **file_identity(paths)}
    return train, validation, summary
