"""``hpogrow`` command line, generated from the commands' config dataclasses.

Every command is a frozen dataclass (:mod:`hpogrow.cli.commands`) whose fields are its flags:
:mod:`hpogrow.cli.arguments` turns each field's name, type, default and docstring into an
argument, and the parsed flags back into the dataclass, whose ``__post_init__`` checks them.
Heavy libraries (torch, optuna, ray) are imported inside the commands, and a command's arguments
are built only when it is used, so ``hpogrow --help`` stays fast. Usage errors print one line and
exit with status 2, before anything is written.
"""

from __future__ import annotations

import argparse
import sys

from hpogrow.cli.docstrings import command_docstrings
from hpogrow.cli.parser import CommandParser


def build_parser() -> argparse.ArgumentParser:
    """The ``hpogrow`` parser: one subcommand per class in :data:`hpogrow.cli.commands.COMMANDS`."""
    parser = CommandParser(prog="hpogrow",
                           description="Tune hyperparameters on a small μP model, grow it, warmstart the big one.")
    subcommands = parser.add_subparsers(dest="command", required=True, parser_class=CommandParser)
    for name, docstring in command_docstrings().items():
        summary, _, details = docstring.partition("\n")
        subcommands.add_parser(name, help=summary, description=" ".join(details.split()) or summary, command=name)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``hpogrow ARGV``; the exit status: 0, 1 (the pipeline cannot go on, a run diverged),
    2 (a usage error, one line on stderr) or 130 (interrupted)."""
    namespace = build_parser().parse_args(argv)
    from hpogrow.cli.arguments import config_from_args, given_flags
    from hpogrow.cli.commands import command_class
    from hpogrow.errors import PipelineError, TrainingDiverged, UsageError

    config_class = command_class(namespace.command)
    try:
        command = config_from_args(config_class, namespace)
        command.check_flags(given_flags(config_class, namespace))
        return command.run()
    except UsageError as error:
        print(f"hpogrow {namespace.command}: error: {error}", file=sys.stderr)
        return 2
    except (PipelineError, TrainingDiverged) as error:
        print(f"hpogrow {namespace.command}: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"hpogrow {namespace.command}: interrupted", file=sys.stderr)
        return 130
