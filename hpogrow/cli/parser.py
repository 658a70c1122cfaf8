"""The argparse parser of ``hpogrow`` and its commands: one-line errors, arguments built on first use."""

from __future__ import annotations

import argparse
import re
import typing
from typing import Any


class CommandParser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line that names the flag, e.g.
    ``hpogrow search: error: --base-width abc: expected a positive integer (see hpogrow search --help)``.

    A command's parser adds the arguments of its config class when first used (to parse or to
    print help): ``hpogrow --help`` then imports no config, and ``hpogrow train`` builds no
    other command's arguments.
    """

    def __init__(self, *args: Any, command: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.command, self._pending = command, command is not None

    def add_config_arguments(self) -> None:
        """The arguments of the command's config class, once."""
        if self._pending:
            from hpogrow.cli.arguments import add_arguments
            from hpogrow.cli.commands import command_class

            self._pending = False
            add_arguments(self, command_class(self.command))

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        self.add_config_arguments()
        return super().parse_known_args(args, namespace)

    def format_help(self) -> str:
        self.add_config_arguments()
        return super().format_help()

    def format_usage(self) -> str:
        self.add_config_arguments()
        return super().format_usage()

    def error(self, message: str) -> typing.NoReturn:
        # argparse says "argument --a/--b: VALUE: expected ..." for a value that a converter refuses
        message = re.sub(r"^argument (--[\w-]+)(?:/--[\w-]+)*: (?=.*: (?:expected|choose from) )", r"\1 ", message)
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")
