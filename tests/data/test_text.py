"""Byte-level text corpora (hpogrow/data/text.py): the split is a function of the data alone."""

from __future__ import annotations

import numpy as np
import pytest

from hpogrow.data.text import VOCAB_SIZE, files_corpus, text_file_corpus, text_folder_corpus
from hpogrow.errors import UsageError


def _tokens(reader) -> bytes:
    count = reader.window_count(1)
    return reader.read(np.arange(count), 1)[:, 0].astype(np.uint8).tobytes() + bytes(
        [int(reader.read(np.array([count - 1]), 1)[0, 1])])


def test_a_folder_is_split_by_file_and_every_byte_is_kept(tmp_path):
    for index in range(60):
        (tmp_path / f"f{index:02d}.txt").write_text(f"file {index}\n" * 3)
    (tmp_path / "image.png").write_bytes(b"\x89PNG")  # not text: ignored
    train, validation, summary = text_folder_corpus(tmp_path)
    assert summary["kind"] == "text" and summary["files"] == 60 and summary["vocab_size"] == VOCAB_SIZE == 256
    assert 0 < summary["validation_tokens"] < summary["train_tokens"]
    text_bytes = sum(path.stat().st_size for path in tmp_path.glob("*.txt"))
    assert len(train) + len(validation) == text_bytes
    again = text_folder_corpus(tmp_path)
    assert again[2]["sha256"] == summary["sha256"]
    assert np.array_equal(again[1].tokens, validation.tokens)  # the same files held out every time


def test_a_few_files_hold_out_the_last_bytes(tmp_path):
    (tmp_path / "a.md").write_bytes(bytes(range(100)))
    train, validation, summary = files_corpus(tmp_path, [tmp_path / "a.md"], "test")
    assert summary["files"] == 1  # a.md hashes into the training split: nothing held out by file
    assert train.tokens.tolist() == list(range(95)) and validation.tokens.tolist() == list(range(95, 100))


def test_a_folder_without_text_files_says_which_suffixes_count(tmp_path):
    (tmp_path / "data.bin").write_bytes(b"\0" * 8)
    with pytest.raises(UsageError, match=r"no text files \(\.txt, .*and no train\.bin"):
        text_folder_corpus(tmp_path)


def test_one_file_validates_on_its_last_five_percent(tmp_path):
    path = tmp_path / "book.txt"
    content = bytes(range(200))
    path.write_bytes(content)
    train, validation, summary = text_file_corpus(path)
    assert (summary["train_tokens"], summary["validation_tokens"]) == (190, 10)
    assert summary["source"] == f"text:{path.resolve()}"
    assert _tokens(train) == content[:190] and _tokens(validation) == content[190:]
