"""Every flag of every command reaches its config, and the configs reach the runs they train."""

from __future__ import annotations

import argparse
import typing
from dataclasses import MISSING, fields

import pytest

from hpogrow.cli import build_parser, main
from hpogrow.cli.arguments import config_from_args
from hpogrow.cli.commands import COMMANDS
from hpogrow.options import field_types, flag

BASE_ARGV = {"grow": ["checkpoint-folder"], "train": ["--width", "32"]}
"""What a command needs before any other flag (grow's checkpoint; a run from scratch needs a width)."""
SAMPLES = {
    "widths": ("64", "96", "128"), "learning_rates": ("0.001", "0.002", "0.004"), "growth_factors": ("2", "3", "5"),
    "pair_tokens_per_param": ("1", "4"), "shrinks": ("0.5",), "grow_op": ("clone",), "device": ("cpu",),
    "data": ("synthetic",),
}
"""Values other than the default that every command accepts, where the type alone does not give one."""
SPECIAL = {("coordcheck", "head_size"): (["--head-size", "16"], 16),
           ("coordcheck", "base_width"): (["--base-width", "64", "--widths", "128", "256", "512"], 64),
           ("search", "bases"): (["--bases", "1"], 1)}  # at most --seeds (default 2)
"""Flags whose value has to fit other flags: the words, and the value they set."""


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    return next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction)).choices


def _flag_actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    parser.add_config_arguments()
    return [action for action in parser._actions if not isinstance(action, argparse._HelpAction)]


def _sample(command: type, name: str) -> tuple[list[str], object]:
    """Command-line words that set field ``name`` to something other than its default, and that value."""
    if (command.NAME, name) in SPECIAL:
        return SPECIAL[command.NAME, name]
    item = next(item for item in fields(command) if item.name == name)
    kind = field_types(command)[name]
    if kind.base is bool:
        return [flag(name)], True
    default = None if item.default is MISSING else item.default
    members = typing.get_args(kind.base) if typing.get_origin(kind.base) is typing.Union else (kind.base,)
    number = float if float in members else int if int in members else None
    if name in SAMPLES:
        texts = SAMPLES[name]
    elif typing.get_origin(kind.base) is typing.Literal:
        texts = (next(choice for choice in typing.get_args(kind.base) if choice != default),)
    elif number is not None:
        texts = (str(number(2 * default) if default else number(64)),)
    else:
        texts = (f"sample-{name}",)
    values = tuple(number(text) if number else text for text in texts)
    words = ([] if item.metadata.get("positional") else [flag(name)]) + list(texts)
    return words, values if kind.many else values[0]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda command: command.NAME)
def test_every_flag_reaches_its_config(command):
    """For every flag (and alias) in the command's parser: a value other than the default, parsed and
    turned into the command's config, ends up in the field of the same name. A flag the config has
    no field for, or a field that no flag sets, fails here."""
    parser = _subparsers()[command.NAME]
    flag_fields = {item.name for item in fields(command) if item.metadata.get("flag", True)}
    actions = _flag_actions(parser)
    assert {action.dest for action in actions} == flag_fields
    defaults = {item.name: item.default for item in fields(command)}
    for action in actions:
        words, expected = _sample(command, action.dest)
        assert expected != defaults[action.dest]
        for spelling in action.option_strings or [None]:
            base = BASE_ARGV.get(command.NAME, []) if spelling else []  # the positional itself: no base
            argv = [*base, *([spelling, *words[1:]] if spelling else words)]
            config = config_from_args(command, parser.parse_args(argv))
            assert getattr(config, action.dest) == expected, (command.NAME, argv)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda command: command.NAME)
def test_every_flag_has_help_and_the_shared_spelling(command):
    for action in _flag_actions(_subparsers()[command.NAME]):
        assert action.help and len(action.help) > 10, (command.NAME, action.dest)
        if action.option_strings:
            assert action.option_strings[0] == flag(action.dest)


def test_fields_that_are_not_flags_are_few_and_named():
    hidden = {(command.NAME, item.name) for command in COMMANDS for item in fields(command)
              if not item.metadata.get("flag", True)}
    assert hidden == {("advise", "operator"), ("advise", "shrink")}


def test_the_command_list_read_from_source_matches_the_commands():
    """``hpogrow --help`` lists the commands from the source of hpogrow/cli/commands.py, unimported."""
    import inspect

    from hpogrow.cli.docstrings import command_docstrings

    assert command_docstrings() == {command.NAME: inspect.getdoc(command) for command in COMMANDS}


def test_broken_variants_have_descriptions():
    from hpogrow.coordcheck_config import BROKEN, BrokenVariant

    assert set(BROKEN) == set(typing.get_args(BrokenVariant))


class _FirstRun(Exception):
    """Raised by a stand-in for the training loop: what it was asked to train is all the test needs."""


def _stop_at_first_run(monkeypatch, module: str) -> list:
    asked = []

    def first_run(task, model, config, **options):
        asked.append(config)
        raise _FirstRun

    monkeypatch.setattr(f"{module}.run_training", first_run)
    return asked


_TINY_ADVICE = ["advise", "--task", "mlp", "--widths", "16", "24", "32", "--tokens", "6400", "--growth-factors", "2",
                "3", "4", "--pair-tokens-per-param", "4", "--seeds", "2", "--workers", "1", "--evaluations", "6",
                "--device", "cpu"]


def test_advise_trains_with_the_schedule_and_compile_it_is_given(tmp_path, monkeypatch):
    asked = _stop_at_first_run(monkeypatch, "hpogrow.advise.ladder")
    with pytest.raises(_FirstRun):
        main([*_TINY_ADVICE, "--schedule", "wsd", "--compile", "--workdir", str(tmp_path)])
    assert asked[0].schedule == "wsd" and asked[0].compile


def test_transfercheck_trains_with_the_schedule_and_compile_it_is_given(tmp_path, monkeypatch):
    asked = _stop_at_first_run(monkeypatch, "hpogrow.transfer.sweep")
    with pytest.raises(_FirstRun):
        main(["transfercheck", "--task", "mlp", "--widths", "16", "32", "--lrs", "0.001", "0.002", "0.004",
              "--tokens", "640", "--batch-size", "32", "--seeds", "1", "--evaluations", "2", "--device", "cpu",
              "--schedule", "wsd", "--compile", "--workdir", str(tmp_path)])
    assert asked[0].schedule == "wsd" and asked[0].compile


@pytest.fixture
def small_corpus(tmp_path) -> str:
    """A text file of a few thousand characters: too little for the default budgets."""
    path = tmp_path / "small.txt"
    path.write_text("".join(f"def f{i}(x):\n    return x * {i} + {i % 7}\n\n" for i in range(300)))
    return str(path)


@pytest.mark.parametrize("argv", [
    ["transfercheck", "--widths", "32", "64", "--lrs", "0.001", "0.002", "0.004", "--tokens", "65536",
     "--batch-size", "8", "--seeds", "1", "--evaluations", "2"],
    ["advise", "--widths", "32", "64", "96", "--tokens", "65536", "--growth-factors", "2", "3", "4",
     "--pair-tokens-per-param", "1", "--batch-size", "8", "--seeds", "2", "--workers", "1", "--evaluations", "6"],
], ids=["transfercheck", "advise"])
def test_allow_repeat_decides_whether_a_sweep_may_reread_its_data(argv, small_corpus, tmp_path, monkeypatch, capsys):
    flags = [*argv, "--data", small_corpus, "--seq-len", "32", "--device", "cpu", "--workdir", str(tmp_path / "w")]
    assert main(flags) == 2
    error = capsys.readouterr().err
    assert "tokens would repeat" in error and "--allow-repeat" in error and error.count("\n") == 1
    assert not (tmp_path / "w").exists()
    asked = _stop_at_first_run(monkeypatch, f"hpogrow.{'advise.ladder' if argv[0] == 'advise' else 'transfer.sweep'}")
    with pytest.raises(_FirstRun):
        main([*flags, "--allow-repeat"])
    assert asked
