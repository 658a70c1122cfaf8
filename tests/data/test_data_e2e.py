"""``--data`` end to end, as a user runs it: ``hpogrow search`` on a text file, a folder of text
files and a nanoGPT folder, through growth and both target runs, in process and on Ray; then
``train`` and ``grow`` on the same data; and the token-supply refusal and ``--allow-repeat``."""

from __future__ import annotations

import json
import logging
import pickle
import sysconfig
from pathlib import Path

import numpy as np
import optuna
import pytest
import ray
import torch
import yaml

from tests.cli.test_cli import _run as _hpogrow  # (argv, capsys) -> (exit status, stderr)

TINY = ["--base-width", "16", "--head-size", "8", "--depth", "1", "--seq-len", "16", "--trials", "2",
        "--evaluations", "2", "--device", "cpu"]
EXECUTOR_FLAGS = {"local": ["--executor", "local", "--scheduler", "none"], "ray": ["--executor", "ray", "--scheduler", "none"]}


def _source_text(size: int) -> bytes:
    """``size`` bytes of the standard library's own source (deterministic for a Python version)."""
    root = Path(sysconfig.get_paths()["stdlib"])
    return b"".join(path.read_bytes() for path in sorted(root.glob("*.py"))[:80])[:size]


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models gain nothing from a second thread, and on a loaded machine OpenMP's barrier
    makes every step wait for it (measured here under load: 0.45 s against 0.02 s a step)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    """One of each kind of ``--data``, about 100 kB each."""
    root = tmp_path_factory.mktemp("data")
    text = _source_text(100_000)
    (root / "corpus.txt").write_bytes(text)
    (root / "folder").mkdir()
    for index in range(20):
        (root / "folder" / f"part{index:02d}.txt").write_bytes(text[index * 5000:(index + 1) * 5000])
    (root / "nanogpt").mkdir()  # as nanoGPT's shakespeare_char/prepare.py writes it
    characters = sorted(set(text.decode("latin-1")))
    ids = {character: index for index, character in enumerate(characters)}
    tokens = np.array([ids[character] for character in text.decode("latin-1")], dtype=np.uint16)
    tokens[:90_000].tofile(root / "nanogpt" / "train.bin")
    tokens[90_000:].tofile(root / "nanogpt" / "val.bin")
    meta = {"vocab_size": len(characters), "itos": dict(enumerate(characters)), "stoi": ids}
    (root / "nanogpt" / "meta.pkl").write_bytes(pickle.dumps(meta))
    return {"text file": root / "corpus.txt", "text folder": root / "folder", "nanogpt folder": root / "nanogpt"}


@pytest.fixture(scope="module")
def ray_runtime():
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    yield
    ray.shutdown()


def _trials(workdir: Path, study: str) -> dict[str, optuna.trial.FrozenTrial]:
    loaded = optuna.load_study(study_name=study, storage=f"sqlite:///{workdir / 'hpogrow.db'}")
    return {trial.user_attrs.get("role", "base") + f"#{trial.number}": trial for trial in loaded.trials}


@pytest.mark.slow
@pytest.mark.parametrize("executor", ["local", "ray"])
@pytest.mark.parametrize("kind", ["text file", "text folder", "nanogpt folder"])
def test_search_on_user_data_through_growth_and_both_target_runs(kind, executor, data, tmp_path, capsys, request):
    if executor == "ray":
        request.getfixturevalue("ray_runtime")
    workdir = tmp_path / "work"
    status, err = _hpogrow(["search", "--data", str(data[kind]), *TINY, *EXECUTOR_FLAGS[executor],
                            "--workdir", str(workdir)], capsys)
    assert status == 0, err

    base = _trials(workdir, "lm-w16/base")
    winner = min((t for t in base.values() if t.state == optuna.trial.TrialState.COMPLETE), key=lambda t: t.value)
    target = {trial.user_attrs["role"]: trial for trial in _trials(workdir, "lm-w16/target-w24").values()}
    assert {role: t.state.name for role, t in target.items()} == {"warmstart": "COMPLETE", "scratch": "COMPLETE",
                                                                  "replicate base": "COMPLETE"}  # --bases 2
    # the replicate base reads the base's tokens again, with another seed
    assert target.pop("replicate base").user_attrs["data_position"] == winner.user_attrs["data_position"]
    for trial in target.values():  # the target reads the tokens after the base's, once
        assert trial.user_attrs["data_position"] > winner.user_attrs["data_position"]
        assert 0 < trial.user_attrs["data_passes"] < 1
    checkpoint = Path(target["warmstart"].user_attrs["checkpoint"])
    summary = yaml.safe_load((checkpoint / "config.yaml").read_text())["data"]
    assert summary["source"].endswith(str(data[kind].resolve())) and summary["validation_tokens"] > 0
    assert ("fingerprint" in summary) or ("sha256" in summary)
    assert json.loads((Path(winner.user_attrs["checkpoint"]) / "state.json").read_text())["data_passes"] < 1
    if executor == "ray":
        return

    # train and grow on the same data, from the search's checkpoints
    status, err = _hpogrow(["train", "--from", str(checkpoint), "--tokens", "2048", "--evaluations", "2",
                            "--device", "cpu", "--out", str(tmp_path / "continued")], capsys)
    assert status == 0, err
    state = json.loads((tmp_path / "continued" / "state.json").read_text())
    assert state["data_position"] > target["warmstart"].user_attrs["data_position"]
    status, err = _hpogrow(["grow", winner.user_attrs["checkpoint"], "--factor", "2", "--out", str(tmp_path / "grown")],
                           capsys)
    assert status == 0, err
    grown = yaml.safe_load((tmp_path / "grown" / "config.yaml").read_text())
    assert grown["width"] == 24 and grown["data"]["source"] == summary["source"]


def test_a_search_that_would_repeat_tokens_is_refused_before_anything_is_written(data, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    workdir = tmp_path / "work"
    status, err = _hpogrow(["search", "--data", str(data["text file"]), *TINY, "--tokens-per-param", "20",
                            "--workdir", str(workdir)], capsys)
    assert status == 2 and len(err.strip().splitlines()) == 1
    assert "tokens would repeat" in err and "--allow-repeat" in err and "--data synthetic" in err
    assert "--tokens-per-param" in err and "passes" in err
    assert not workdir.exists() and not (tmp_path / "studies").exists()

    # the papers' budget at the default width on the default corpus, at once
    status, err = _hpogrow(["search", "--base-width", "128", "--tokens-per-param", "20", "--workdir", str(workdir)],
                           capsys)
    assert status == 2 and "cpython-stdlib" in err and "tokens would repeat" in err
    assert not workdir.exists() and not (tmp_path / "studies").exists()

    # one training run checks itself the same way
    status, err = _hpogrow(["train", "--data", str(data["text file"]), "--width", "16", "--head-size", "8",
                            "--depth", "1", "--seq-len", "16", "--lr", "0.01", "--batch-size", "16",
                            "--tokens", "1000000", "--workdir", str(workdir)], capsys)
    assert status == 2 and "tokens would repeat" in err and "--tokens 9" in err  # 95,000 bytes fit
    assert not workdir.exists()


@pytest.mark.slow
def test_allow_repeat_runs_and_records_the_passes(data, tmp_path, capsys):
    small = tmp_path / "small.txt"
    small.write_bytes(data["text file"].read_bytes()[:8_000])  # 7,600 training bytes
    workdir = tmp_path / "work"
    status, err = _hpogrow(["search", "--data", str(small), *TINY, *EXECUTOR_FLAGS["local"], "--allow-repeat",
                            "--workdir", str(workdir)], capsys)
    assert status == 0, err
    target = {trial.user_attrs["role"]: trial for trial in _trials(workdir, "lm-w16/target-w24").values()
              if trial.user_attrs["role"] != "replicate base"}  # it reads the base's tokens only
    for trial in target.values():
        assert trial.user_attrs["data_passes"] > 1
        state = json.loads((Path(trial.user_attrs["checkpoint"]) / "state.json").read_text())
        assert state["data_passes"] == trial.user_attrs["data_passes"]
