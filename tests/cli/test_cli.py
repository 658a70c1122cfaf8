"""Command line: usage errors are one line, exit status 2, and write nothing."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from hpogrow.checkpoint import save_checkpoint
from hpogrow.cli import main
from hpogrow.parametrize import build_model
from hpogrow.train import TrainState


def _run(argv: list[str], capsys) -> tuple[int, str]:
    try:
        status = main(argv)
    except SystemExit as exit_:  # argparse's own errors
        status = exit_.code
    return status, capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["search", "--base-width", "abc"], "--base-width abc: expected a positive integer"),
    (["search", "--grow-factor", "often"], "--grow-factor often: expected a number or auto"),
    (["search", "--task", "gpt"], "--task gpt: choose from lm, mlp"),
    (["search", "--base-width", "100"], "not a positive multiple of 32"),
    (["search", "--trials", "0"], "must be a positive integer"),
    (["search", "--shrink", "1.5"], "between 0 and 1"),
    (["search", "--grow-factor", "0.5"], "above 1"),
    (["search", "--target-width", "96"], "must be larger than the base width"),
    (["search", "--space", "/no/such/space.yaml"], "no such file"),
    (["search", "--data", "/no/such/corpus"], "no such file or folder"),
    (["search", "--tokens-per-param", "0.001"], "raise it to at least"),
    (["search", "--device", "cuda:7"], "CUDA is not available"),
    (["search", "--no-such-flag"], "unrecognized arguments"),
    (["grow", "/no/such/checkpoint"], "does not exist"),
    (["train", "--lr", "0.01", "--batch-size", "8"], "pass --width"),
    (["train", "--lr", "-1", "--width", "32"], "--lr -1: must be positive"),
    (["train", "--from", "/no/such/checkpoint", "--depth", "3"], "--depth: a run --from a checkpoint takes its task"),
    (["train", "--task", "mlp", "--width", "16", "--seq-len", "64"], "--seq-len: only for --task lm"),
    (["grow", "/no/such/checkpoint", "--factor", "auto"], "--grow-factor auto: only a search reads the stored advice"),
    (["report", "--study", "nothing-here"], "no storage at"),
])
def test_usage_errors_exit_2_with_one_line_and_write_nothing(argv, message, capsys, tmp_path, monkeypatch):
    if argv[1:2] == ["--device"] and __import__("torch").cuda.is_available():
        pytest.skip("CUDA is present")
    monkeypatch.chdir(tmp_path)
    workdir = tmp_path / "work"
    extra = [] if argv[0] == "grow" else ["--workdir", str(workdir)]
    status, err = _run(argv + extra, capsys)
    assert status == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert not workdir.exists()
    assert not (tmp_path / "studies").exists()


def test_bad_space_file_is_a_usage_error(tmp_path, capsys):
    space = tmp_path / "space.yaml"
    space.write_text("learning_rate: {low: 0.1, high: 0.01}\nbatch_size: {choices: [24]}\n")
    status, err = _run(["search", "--space", str(space), "--workdir", str(tmp_path / "w")], capsys)
    assert status == 2 and "low <= high" in err and not (tmp_path / "w").exists()


def test_mismatched_checkpoint_is_a_usage_error(mlp_task, tmp_path, capsys):
    path = save_checkpoint(tmp_path / "ckpt", build_model(mlp_task, 16, 16, 0), task=mlp_task, width=16,
                           base_width=16, seed=0, state=TrainState())
    config = (path / "config.yaml").read_text().replace("width: 16", "width: 24", 1)
    (path / "config.yaml").write_text(config)
    status, err = _run(["grow", str(path), "--out", str(tmp_path / "grown")], capsys)
    assert status == 2 and "does not match its config" in err
    assert not (tmp_path / "grown").exists()
    (path / "model.pt").unlink()
    status, err = _run(["grow", str(path)], capsys)
    assert status == 2 and "incomplete (missing model.pt)" in err


def test_grow_and_train_from_the_command_line(mlp_task, tmp_path, capsys):
    base = tmp_path / "base"
    status, _ = _run(["train", "--task", "mlp", "--width", "16", "--lr", "0.01", "--batch-size", "64",
                      "--tokens", "2048", "--evaluations", "2", "--out", str(base), "--device", "cpu"], capsys)
    assert status == 0 and (base / "model.pt").exists()
    status, _ = _run(["grow", str(base), "--factor", "2", "--out", str(tmp_path / "grown")], capsys)
    assert status == 0 and (tmp_path / "grown" / "base_shapes.yaml").exists()
    status, _ = _run(["grow", str(base), "--out", str(tmp_path / "grown")], capsys)
    assert status == 2  # refuses to overwrite
    status, _ = _run(["train", "--from", str(tmp_path / "grown"), "--tokens", "2048", "--evaluations", "2",
                      "--out", str(tmp_path / "warm"), "--device", "cpu"], capsys)
    assert status == 0 and (tmp_path / "warm" / "state.json").exists()


def test_diverging_train_run_says_so_and_writes_no_checkpoint(tmp_path, capsys):
    status, err = _run(["train", "--task", "mlp", "--width", "16", "--lr", "1e30", "--batch-size", "64",
                        "--tokens", "4096", "--out", str(tmp_path / "run"), "--device", "cpu"], capsys)
    assert status == 1 and "learning rate is probably too high" in err
    assert not (tmp_path / "run").exists()


def test_console_script_help_does_not_import_torch():
    code = ("import sys; from hpogrow.cli import build_parser\n"
            "try:\n    build_parser().parse_args(['--help'])\nexcept SystemExit: pass\n"
            "assert 'torch' not in sys.modules and 'ray' not in sys.modules and 'optuna' not in sys.modules\n"
            "assert 'hpogrow.options' not in sys.modules  # no config is built for the list of commands")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "search" in result.stdout and "grow" in result.stdout


@pytest.mark.parametrize("argv, message", [
    (["search", "--base-width", "100"], "hpogrow search: error: --base-width 100 is not a positive multiple of 32"),
    (["search", "--base-width", "abc"], "hpogrow search: error: --base-width abc: expected a positive integer"),
    (["train", "--lr", "-1"], "hpogrow train: error: --lr -1: must be positive"),
])
def test_module_entry_point_exits_2_with_one_line_and_no_traceback(argv, message, tmp_path):
    result = subprocess.run([sys.executable, "-m", "hpogrow", *argv, "--workdir", str(tmp_path / "w")],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(message), result.stderr
    assert not Path(tmp_path / "w").exists()


def test_search_and_report_on_the_language_model(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    workdir = "work"  # relative, as the default studies/ is: Ray workers run elsewhere
    status, _ = _run(["search", "--base-width", "16", "--head-size", "8", "--seq-len", "16", "--depth", "1",
                      "--trials", "3", "--tokens-per-param", "2", "--evaluations", "4", "--device", "cpu",
                      "--workdir", workdir], capsys)
    assert status == 0
    assert main(["report", "--study", "lm-w16", "--workdir", workdir]) == 0
    out = capsys.readouterr().out
    assert "lm-w16/base: 3 trials" in out and "warmstart" in out and "scratch" in out
    dashboard = rf"optuna-dashboard sqlite:///(\S*/)?{workdir}/hpogrow\.db --artifact-dir (\S*/)?{workdir}/artifacts"
    assert re.search(dashboard, out.replace("\n", ""))  # relative as given, or made absolute


def test_train_from_a_grown_checkpoint_continues_its_carried_adam_moments(tmp_path, capsys):
    """``grow --carry-optimizer`` pads the base's Adam moments; ``train --from`` trains on with them
    (Adam's step count goes on from the base's), at the learning rate it is given."""
    import torch

    base = tmp_path / "base"
    assert _run(["train", "--task", "mlp", "--width", "16", "--lr", "0.01", "--batch-size", "64", "--tokens", "2048",
                 "--evaluations", "2", "--out", str(base), "--device", "cpu"], capsys)[0] == 0
    assert _run(["grow", str(base), "--factor", "2", "--carry-optimizer", "--out", str(tmp_path / "grown")], capsys)[0] == 0
    status, _ = _run(["train", "--from", str(tmp_path / "grown"), "--tokens", "1024", "--lr", "0.003",
                      "--evaluations", "2", "--out", str(tmp_path / "warm"), "--device", "cpu"], capsys)
    assert status == 0
    steps = lambda folder: {float(s["step"]) for s in torch.load(folder / "optimizer.pt")["state"].values()}  # noqa: E731
    assert steps(base) == {2048 / 64} and steps(tmp_path / "warm") == {(2048 + 1024) / 64}
    rates = {group["initial_lr"] for group in torch.load(tmp_path / "warm" / "optimizer.pt")["param_groups"]}
    assert max(rates) == pytest.approx(0.003)  # the rate asked for, not the base's 0.01
