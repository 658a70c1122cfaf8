"""Paths in reports (hpogrow/search/report.py): absolute, whatever folder the search ran in and
whatever folder ``hpogrow report`` is called from."""

from __future__ import annotations

import io
from pathlib import Path

import optuna
from rich.console import Console

from hpogrow import record
from hpogrow.search.report import attach_plot, print_report


def _report(storage_url: str, study: str, workdir: str) -> str:
    console = Console(file=io.StringIO(), width=400)
    print_report(storage_url, study, workdir, console)
    return console.file.getvalue()


def test_plots_are_recorded_absolute_and_reported_so_from_another_folder(tmp_path, monkeypatch):
    search_folder, other_folder = tmp_path / "ran-here", tmp_path / "elsewhere"
    search_folder.mkdir(), other_folder.mkdir()
    monkeypatch.chdir(search_folder)  # the search ran with a relative --workdir
    storage_url = "sqlite:///work/hpogrow.db"
    (search_folder / "work" / "plots").mkdir(parents=True)
    plot = Path("work/plots/s_target-w32.png")
    plot.write_bytes(b"\x89PNG")
    optuna.create_study(study_name="s/base", storage=storage_url)
    target = optuna.create_study(study_name="s/target-w32", storage=storage_url)
    attach_plot(target, plot, Path("work/artifacts"))
    assert record.read_plot(target) == str(search_folder / plot)

    monkeypatch.chdir(other_folder)
    said = _report(f"sqlite:///{search_folder}/work/hpogrow.db", "s", str(search_folder / "work"))
    assert f"loss curves: {search_folder / plot}" in said
    assert f"--artifact-dir {search_folder / 'work' / 'artifacts'}" in said


def test_a_plot_recorded_relative_is_found_in_the_workdir_and_the_storage_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    storage_url = "sqlite:///work/hpogrow.db"
    (tmp_path / "work").mkdir()
    optuna.create_study(study_name="s/base", storage=storage_url)
    target = optuna.create_study(study_name="s/target-w32", storage=storage_url)
    record.write_plot(target, "somewhere/relative/plots/s_target-w32.png")  # as older versions recorded it
    said = _report(storage_url, "s", "work")
    assert f"loss curves: {tmp_path / 'work' / 'plots' / 's_target-w32.png'}" in said
    assert f"optuna-dashboard sqlite:///{tmp_path / 'work' / 'hpogrow.db'} --artifact-dir {tmp_path / 'work' / 'artifacts'}" in said
