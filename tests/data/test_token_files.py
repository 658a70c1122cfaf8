"""nanoGPT token folders (hpogrow/data/token_files.py and how hpogrow/data/corpus.py finds them): a
folder as nanoGPT's own openwebtext script writes it trains; a half-written one is one line."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from hpogrow.cli import main
from hpogrow.data import load_corpus, vocabulary_size
from hpogrow.data.token_files import GPT2_ORIGIN, GPT2_VOCAB_SIZE


def _hpogrow(argv: list[str], capsys) -> tuple[int, str, str]:
    """``hpogrow ARGV`` in this process: (exit status, stdout, stderr)."""
    try:
        status = main(argv)
    except SystemExit as exit_:  # argparse's own errors
        status = exit_.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _openwebtext_folder(path, seed: int = 0):
    """train.bin/val.bin of GPT-2 BPE tokens (uint16, below 50,257) and no meta.pkl, as nanoGPT's
    data/openwebtext/prepare.py writes them."""
    path.mkdir()
    generator = np.random.default_rng(seed)
    generator.integers(0, GPT2_VOCAB_SIZE, 6000, dtype=np.uint16).tofile(path / "train.bin")
    generator.integers(0, GPT2_VOCAB_SIZE, 2000, dtype=np.uint16).tofile(path / "val.bin")
    return path


def test_a_folder_without_meta_pkl_has_gpt2s_vocabulary_as_in_nanogpt(tmp_path):
    folder = str(_openwebtext_folder(tmp_path / "owt"))
    corpus = load_corpus(folder)
    assert corpus.summary["vocab_size"] == GPT2_VOCAB_SIZE == 50257 and corpus.summary["vocab_from"] == GPT2_ORIGIN
    assert vocabulary_size(folder) == 50257
    assert vocabulary_size(folder, 50304) == 50304  # --vocab-size still sets it (nanoGPT's padded size)
    (tmp_path / "owt" / "meta.pkl").write_bytes(pickle.dumps({"vocab_size": 65}))
    assert vocabulary_size(folder) == 65  # meta.pkl, when there, decides


@pytest.mark.slow  # ~15 s: GPT-2's vocabulary makes even a width-32 model 3M parameters
def test_hpogrow_train_runs_on_a_folder_without_meta_pkl_and_says_the_vocabulary(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = _openwebtext_folder(tmp_path / "owt")
    status, out, err = _hpogrow(["train", "--data", str(folder), "--width", "32", "--lr", "0.01", "--batch-size", "2",
                                 "--tokens", "512", "--evaluations", "2", "--device", "cpu",
                                 "--workdir", str(tmp_path / "work")], capsys)
    assert status == 0, err
    said = " ".join(out.split())  # rich wraps lines
    assert "no meta.pkl: assuming GPT-2 BPE tokens, a vocabulary of 50,257" in said
    assert "validation loss" in said and list((tmp_path / "work" / "runs").glob("*/model.pt"))


def test_val_bin_without_train_bin_says_train_bin_is_missing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = _openwebtext_folder(tmp_path / "half")
    (folder / "train.bin").unlink()
    status, out, err = _hpogrow(["train", "--data", str(folder), "--width", "32", "--lr", "0.01", "--batch-size", "2",
                                 "--tokens", "512", "--workdir", str(tmp_path / "work")], capsys)
    assert status == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert f"--data {folder}: val.bin is there but train.bin is missing next to it" in err
    assert "no text files" not in err and not (tmp_path / "work").exists()
