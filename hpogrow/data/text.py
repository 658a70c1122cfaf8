"""Byte-level text corpora: the CPython standard library (the default, no download), a folder of
text files, or one text file.

A folder (and the standard library) is read into memory, one byte per token, and split by a
hash of each file's relative path (about 5% held out). A single file is memory-mapped and read
window by window like a token file (any size works); its last 5% is held out. Either way the
split is a function of the data alone, so validation is the same in every run.
"""

from __future__ import annotations

import hashlib
import platform
import sysconfig
from pathlib import Path

import numpy as np

from hpogrow.data.token_files import TokenFile, file_identity
from hpogrow.data.windows import TokenArray
from hpogrow.errors import UsageError

VOCAB_SIZE = 256
"""Byte-level tokens."""
VALIDATION_PERCENT = 5
TEXT_SUFFIXES = (".txt", ".md", ".py", ".rst", ".json", ".csv", ".html", ".c", ".h", ".js")
_EXCLUDED_DIRS = {"site-packages", "dist-packages", "test", "tests", "idle_test", "__pycache__"}


def _is_validation(relative_path: str) -> bool:
    digest = hashlib.sha256(relative_path.encode()).digest()
    return int.from_bytes(digest[:4], "little") % 100 < VALIDATION_PERCENT


def files_corpus(root: Path, files: list[Path], source: str) -> tuple[TokenArray, TokenArray, dict]:
    """Train and validation bytes of ``files`` (split by a hash of each path), and the summary."""
    sha = hashlib.sha256()
    train_parts: list[bytes] = []
    validation_parts: list[bytes] = []
    for path in sorted(files):
        relative = path.relative_to(root).as_posix()
        data = path.read_bytes()
        sha.update(relative.encode() + b"\0" + data + b"\0")
        (validation_parts if _is_validation(relative) else train_parts).append(data)
    if not validation_parts:  # very few files: hold out the last 5% of the bytes
        joined = b"".join(train_parts)
        cut = len(joined) * (100 - VALIDATION_PERCENT) // 100
        train_parts, validation_parts = [joined[:cut]], [joined[cut:]]
    train, validation = (TokenArray(np.frombuffer(b"".join(parts), dtype=np.uint8))
                         for parts in (train_parts, validation_parts))
    return train, validation, {
        "source": source, "kind": "text", "files": len(files), "sha256": sha.hexdigest(),
        "train_tokens": len(train), "validation_tokens": len(validation), "vocab_size": VOCAB_SIZE,
        "python_version": platform.python_version(),
    }


def stdlib_corpus() -> tuple[TokenArray, TokenArray, dict]:
    """The running Python's standard library source: ``.py`` files outside tests and
    site-packages (about 12M bytes; contents vary by Python version, which is recorded)."""
    root = Path(sysconfig.get_paths()["stdlib"])
    files = [p for p in root.rglob("*.py") if not _EXCLUDED_DIRS.intersection(p.relative_to(root).parts[:-1])]
    return files_corpus(root, files, f"cpython-stdlib:{root}")


def text_folder_corpus(folder: Path) -> tuple[TokenArray, TokenArray, dict]:
    files = [p for p in folder.rglob("*") if p.is_file() and p.suffix in TEXT_SUFFIXES]
    if not files:
        raise UsageError(f"--data {folder}: the folder has no text files ({', '.join(TEXT_SUFFIXES)}) "
                         "and no train.bin")
    return files_corpus(folder, files, f"text:{folder.resolve()}")


def text_file_corpus(path: Path) -> tuple[TokenFile, TokenFile, dict]:
    """One text file, memory-mapped: bytes before the last 5% train, the last 5% validate."""
    size = path.stat().st_size
    cut = size * (100 - VALIDATION_PERCENT) // 100
    train, validation = TokenFile(path, "uint8", 0, cut), TokenFile(path, "uint8", cut, size - cut)
    return train, validation, {
        "source": f"text:{path.resolve()}", "kind": "text", "files": 1, **file_identity([path]),
        "train_tokens": cut, "validation_tokens": size - cut, "vocab_size": VOCAB_SIZE,
    }
