from __future__ import annotations

import json

import pytest
import torch

from hpogrow.checkpoint import load_model, read_checkpoint, save_checkpoint
from hpogrow.errors import UsageError
from hpogrow.parametrize import build_model
from hpogrow.train import TrainConfig, TrainState


def test_checkpoint_folder_rebuilds_the_model_alone(lm_task, tmp_path):
    model = build_model(lm_task, 32, 16, seed=0)
    config = TrainConfig(learning_rate=0.01, batch_size=4, tokens=100)
    path = save_checkpoint(tmp_path / "ckpt", model, task=lm_task, width=32, base_width=16, seed=0,
                           state=TrainState(step=3, tokens_seen=192, data_position=12), train_config=config,
                           metrics={"val_loss": 4.0})
    assert sorted(p.name for p in path.iterdir()) == ["base_shapes.yaml", "config.yaml", "model.pt", "state.json"]
    checkpoint = read_checkpoint(path)
    assert checkpoint.state == TrainState(step=3, tokens_seen=192, data_position=12)
    assert checkpoint.config["train"]["learning_rate"] == 0.01 and checkpoint.metrics["val_loss"] == 4.0
    assert checkpoint.config["data"]["sha256"] == lm_task.data_summary()["sha256"]
    rebuilt, task = load_model(path)  # no task passed: rebuilt from config.yaml
    assert task.describe() == lm_task.describe()
    assert rebuilt.readout.width_mult() == 2  # base shapes from the file
    x = torch.randint(0, 256, (2, 16))
    torch.testing.assert_close(rebuilt(x), model(x))


def test_save_is_atomic_and_replaces(mlp_task, tmp_path, monkeypatch):
    model = build_model(mlp_task, 16, 16, seed=0)
    path = save_checkpoint(tmp_path / "c", model, task=mlp_task, width=16, base_width=16, seed=0, state=TrainState(step=1))

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("hpogrow.checkpoint.json.dumps", broken)
    with pytest.raises(OSError):
        save_checkpoint(path, model, task=mlp_task, width=16, base_width=16, seed=0, state=TrainState(step=2))
    assert json.loads((path / "state.json").read_text())["step"] == 1  # old checkpoint intact
    assert [p.name for p in tmp_path.iterdir()] == ["c"]  # no half-written folder left
    monkeypatch.undo()
    save_checkpoint(path, model, task=mlp_task, width=16, base_width=16, seed=0, state=TrainState(step=2))
    assert read_checkpoint(path).state.step == 2 and [p.name for p in tmp_path.iterdir()] == ["c"]


def test_custom_task_checkpoint_needs_the_task(tmp_path):
    from tests.search.test_pipeline import WaveRegression

    task = WaveRegression()
    path = save_checkpoint(tmp_path / "c", build_model(task, 16, 16, 0), task=task, width=16, base_width=16,
                           seed=0, state=TrainState())
    with pytest.raises(UsageError, match="custom task 'wave-regression'"):
        load_model(path)
    model, _ = load_model(path, task)
    assert model[4].width_mult() == 1


@pytest.mark.parametrize("kind", ["file", "empty folder"])
def test_grow_on_something_not_a_checkpoint_says_so_in_one_line(kind, tmp_path, capsys, monkeypatch):
    from hpogrow.cli import main

    monkeypatch.chdir(tmp_path)
    path = tmp_path / "notes.txt"
    if kind == "file":
        path.write_text("not weights\n")
    else:
        path.mkdir()
    try:
        status = main(["grow", str(path), "--out", str(tmp_path / "grown")])
    except SystemExit as exit_:  # argparse's own errors
        status = exit_.code
    err = capsys.readouterr().err
    assert status == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert f"checkpoint {path} is" in err and "not a checkpoint folder written by hpogrow" in err
    assert "does not exist" not in err and not (tmp_path / "grown").exists()
