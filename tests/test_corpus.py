"""Data with no download: the standard-library corpus, user text, nanoGPT .bin files, window order."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hpogrow.corpus import WindowStream, load_corpus
from hpogrow.errors import UsageError
from hpogrow.tasks import FourierTask, LanguageTask


def test_stdlib_corpus_is_deterministic_and_split():
    corpus = load_corpus(None)
    summary = corpus.summary
    assert summary["source"].startswith("cpython-stdlib:") and len(summary["sha256"]) == 64
    assert summary["python_version"] and summary["train_tokens"] > 1_000_000
    assert 0.01 < summary["validation_tokens"] / summary["train_tokens"] < 0.15
    load_corpus.cache_clear()
    again = load_corpus(None)
    assert again.summary["sha256"] == summary["sha256"] and torch.equal(again.train[:1000], corpus.train[:1000])


def test_text_folder_and_bin_folder(tmp_path):
    (tmp_path / "text").mkdir()
    for index in range(40):
        (tmp_path / "text" / f"doc{index}.txt").write_text(f"document {index} " * 50)
    corpus = load_corpus(str(tmp_path / "text"))
    assert corpus.summary["files"] == 40 and corpus.validation.numel() > 0
    assert bytes(corpus.train[:9].tolist()).startswith(b"document")

    (tmp_path / "bin").mkdir()
    np.arange(5000, dtype=np.uint16).tofile(tmp_path / "bin" / "train.bin")
    np.arange(300, 800, dtype=np.uint16).tofile(tmp_path / "bin" / "val.bin")
    corpus = load_corpus(str(tmp_path / "bin"))
    assert corpus.train.tolist()[:3] == [0, 1, 2] and corpus.summary["vocab_size"] == 5000
    task = LanguageTask(depth=1, head_size=8, seq_len=16, data=str(tmp_path / "bin"))
    assert task.build_model(16).readout.out_features == 5000

    (tmp_path / "bin" / "val.bin").unlink()
    load_corpus.cache_clear()
    with pytest.raises(UsageError, match="val.bin is missing"):
        load_corpus(str(tmp_path / "bin"))


def test_window_stream_visits_every_window_once_per_epoch():
    stream = WindowStream(torch.arange(1001), seq_len=10, seed=3)
    starts = stream.windows(0, stream.n_windows)[:, 0].tolist()
    assert sorted(starts) == list(range(0, 1000, 10))[: stream.n_windows]
    assert starts != sorted(starts)  # shuffled order
    windows = stream.windows(5, 3)
    assert windows.shape == (3, 11) and torch.equal(windows[:, 1:] - windows[:, :-1], torch.ones(3, 10, dtype=torch.long))
    # continuing from a position gives exactly what a single longer read gives
    assert torch.equal(stream.windows(0, 8)[4:], stream.windows(4, 4))


def test_lm_batches_continue_without_repeating(lm_task):
    first = lm_task.batch(0, 8, torch.device("cpu"))[0]
    second = lm_task.batch(8, 8, torch.device("cpu"))[0]
    inputs, targets = lm_task.batch(0, 16, torch.device("cpu"))
    assert torch.equal(torch.cat([first, second]), inputs)
    assert torch.equal(inputs[:, 1:], targets[:, :-1])


def test_fourier_target_matches_the_paper_construction():
    task = FourierTask(modes=2000, seed=1)
    target = task.target
    assert target.frequencies.shape == (2000, 8)
    assert torch.equal(target.frequencies, target.frequencies.round())
    assert target.weights.norm().item() == pytest.approx(1.0)
    assert set(target.phases.unique().tolist()) <= {0.0, np.pi / 2}
    x, y = task.batch(0, 4096, torch.device("cpu"))
    assert x.min() >= -0.5 and x.max() <= 0.5
    assert y.pow(2).mean().item() == pytest.approx(1.0, rel=0.15)  # unit-norm coefficients: E[y²] = 1
    assert not torch.equal(task.batch(1, 4, torch.device("cpu"))[0], task.batch(2, 4, torch.device("cpu"))[0])
