"""What ``--data`` names, and loading it as a :class:`Corpus`.

``--data`` takes:

- nothing: the CPython standard library's source, byte-level (the quick CPU default);
- ``synthetic`` or ``synthetic:SEED``: the built-in synthetic language (unbounded, generated
  from the seed, with a known entropy floor; :mod:`hpogrow.data.synthetic`);
- a folder with nanoGPT's ``train.bin`` and ``val.bin`` (memory-mapped token files; the
  vocabulary from ``meta.pkl`` or ``--vocab-size``, else GPT-2's 50,257 as nanoGPT assumes;
  ``--dtype uint16|uint32``);
- a folder of text files, or one text file (byte-level).

A path named ``synthetic`` is reached as ``./synthetic``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from hpogrow.data import text, token_files
from hpogrow.data.synthetic import SyntheticLanguageConfig, synthetic_corpus
from hpogrow.data.windows import WindowReader
from hpogrow.errors import UsageError

SYNTHETIC = "synthetic"
DataKind = Literal["stdlib", "synthetic", "token-files", "text-folder", "text-file"]


@dataclass(frozen=True)
class Corpus:
    """Train and validation splits with a description of where they came from."""

    train: WindowReader = field(repr=False)
    """The training split, read window by window."""
    validation: WindowReader = field(repr=False)
    """The held-out split (the same in every run)."""
    summary: dict[str, Any] = field(default_factory=dict)
    """Source, kind, hash or fingerprint, token counts (``None``: unbounded), vocabulary size."""


def synthetic_config(data: str) -> SyntheticLanguageConfig | None:
    """The language ``synthetic`` / ``synthetic:SEED`` names, or ``None`` for other data."""
    name, _, seed = data.partition(":")
    if name != SYNTHETIC:
        return None
    if seed and not seed.lstrip("-").isdigit():
        raise UsageError(f"--data {data}: the seed after 'synthetic:' must be an integer, e.g. synthetic:1")
    return SyntheticLanguageConfig(seed=int(seed or 0))


def data_kind(data: str | None) -> DataKind:
    """What ``data`` names; a one-line error when it names nothing usable."""
    if data is None:
        return "stdlib"
    if synthetic_config(data) is not None:
        return "synthetic"
    path = Path(data)
    if not path.exists():
        raise UsageError(f"--data {data}: no such file or folder; pass a text file, a folder of text files, "
                         "a folder with train.bin/val.bin, or synthetic")
    if path.is_dir():
        if (path / "val.bin").exists() and not (path / "train.bin").exists():
            raise UsageError(f"--data {data}: val.bin is there but train.bin is missing next to it; write both "
                             "(nanoGPT's prepare.py does)")
        return "token-files" if (path / "train.bin").exists() else "text-folder"
    return "text-file"


def vocabulary_size(data: str | None, vocab_size: int | None = None, dtype: str = "uint16") -> int:
    """The model's vocabulary for ``data``, found without reading any token: 256 for text,
    the synthetic language's own, ``meta.pkl``, ``vocab_size`` or GPT-2's for token files. A given
    ``vocab_size`` may pad the vocabulary but not shrink it."""
    kind = data_kind(data)
    if dtype not in token_files.DTYPES:
        raise UsageError(f"--dtype {dtype}: use uint16 or uint32")
    if kind == "token-files":
        return token_files.token_folder_vocabulary(Path(data), vocab_size, dtype)[0]
    if dtype != "uint16":
        raise UsageError(f"--dtype {dtype} applies to train.bin/val.bin token files, not to {data or 'the default corpus'}")
    natural = synthetic_config(data).vocab_size if kind == "synthetic" else text.VOCAB_SIZE
    if vocab_size is not None and vocab_size < natural:
        raise UsageError(f"--vocab-size {vocab_size} is smaller than the {natural} tokens of {data or 'the default corpus'}")
    return vocab_size or natural


@lru_cache(maxsize=4)
def load_corpus(data: str | None = None, vocab_size: int | None = None, dtype: str = "uint16") -> Corpus:
    """Open the data ``--data`` names (see the module docstring). Text folders are read into
    memory; token files and single text files are memory-mapped; synthetic data is generated
    on demand. Nothing here depends on torch's default device.

    Example::

        corpus = load_corpus("synthetic:1")
        corpus.train.read(numpy.arange(4), seq_len=16)  # (4, 17) tokens
    """
    kind = data_kind(data)
    vocab = vocabulary_size(data, vocab_size, dtype)
    if kind == "stdlib":
        train, validation, summary = text.stdlib_corpus()
    elif kind == "synthetic":
        train, validation, summary = synthetic_corpus(synthetic_config(data))
    elif kind == "token-files":
        train, validation, summary = token_files.token_folder(Path(data), vocab_size, dtype)
    elif kind == "text-folder":
        train, validation, summary = text.text_folder_corpus(Path(data))
    else:
        train, validation, summary = text.text_file_corpus(Path(data))
    return Corpus(train, validation, {**summary, "vocab_size": vocab})
