"""A config dataclass as argparse arguments, and the parsed flags back as the dataclass.

Each field is one flag: its name from :func:`hpogrow.options.flag`, its type from the annotation
(``int``, ``float``, ``str``, ``bool`` → a switch, ``Literal`` → choices, ``tuple[X, ...]`` →
several values, ``X | None`` → optional), its help from the docstring under the field, its
default from the field default. The parser stores only the flags given, so the defaults live in
the dataclass alone and a command can tell which flags were given (:func:`given_flags`).
"""

from __future__ import annotations

import argparse
import re
import types
import typing
from collections.abc import Callable
from dataclasses import MISSING, Field, fields
from typing import Any, Literal

from hpogrow.cli.docstrings import field_docs
from hpogrow.options import FieldType, field_types, flag


def add_arguments(parser: argparse.ArgumentParser, config_class: type) -> None:
    """One argument per field of ``config_class``, grouped by the option group that declares it."""
    kinds, docs = field_types(config_class), field_docs(config_class)
    titles = {item.name: _group_of(config_class, item.name) for item in _flag_fields(config_class)}
    groups: dict[str | None, Any] = {None: parser}  # the command's own flags first, then each group's
    for item in sorted(_flag_fields(config_class), key=lambda item: titles[item.name] is not None):
        if titles[item.name] not in groups:
            groups[titles[item.name]] = parser.add_argument_group(titles[item.name])
        help_text = _help(docs.get(item.name, ""), item, kinds[item.name], set(kinds))
        _add_field(groups[titles[item.name]], item, kinds[item.name], help_text)


def config_from_args(config_class: type, namespace: argparse.Namespace) -> Any:
    """``config_class`` from the flags given in ``namespace``; the others keep their defaults.

    Raises:
        UsageError: from the config's ``__post_init__`` checks, naming the flag.
    """
    values = {name: getattr(namespace, name) for name in given_flags(config_class, namespace)}
    return config_class(**{name: tuple(value) if isinstance(value, list) else value for name, value in values.items()})


def given_flags(config_class: type, namespace: argparse.Namespace) -> frozenset[str]:
    """Names of the fields of ``config_class`` whose flag was given."""
    return frozenset(item.name for item in _flag_fields(config_class) if hasattr(namespace, item.name))


def _flag_fields(config_class: type) -> list[Field]:
    return [item for item in fields(config_class) if item.metadata.get("flag", True)]


def _group_of(config_class: type, name: str) -> str | None:
    """The ``GROUP`` of the class that declares field ``name``."""
    owner = next(cls for cls in config_class.__mro__ if name in cls.__dict__.get("__annotations__", {}))
    return owner.__dict__.get("GROUP")


def _add_field(group: Any, item: Field, kind: FieldType, help_text: str) -> None:
    options: dict[str, Any] = {"help": help_text}
    if kind.base is bool:
        if item.default is not False:
            raise TypeError(f"{item.name}: a switch must default to False")
        options["action"] = "store_true"
    else:
        options["type"] = _converter(kind)
        options["metavar"] = _metavar(item.name, kind.base)
        if kind.many:
            options["nargs"] = "*"
    if item.metadata.get("positional"):
        group.add_argument(item.name, **options)
    else:
        group.add_argument(flag(item.name), *item.metadata.get("aliases", ()), dest=item.name,
                           default=argparse.SUPPRESS, **options)


def _metavar(name: str, base: Any) -> str:
    if typing.get_origin(base) is Literal:
        return "{" + ",".join(typing.get_args(base)) + "}"
    return flag(name)[2:].upper().replace("-", "_")


def _converter(kind: FieldType) -> Callable[[str], Any]:
    """Text to value; an ``argparse.ArgumentTypeError`` ``"VALUE: expected …"`` for anything else."""
    members = typing.get_args(kind.base) if typing.get_origin(kind.base) in (typing.Union, types.UnionType) else (kind.base,)
    choices = [choice for member in members if typing.get_origin(member) is Literal for choice in typing.get_args(member)]
    numbers = [member for member in members if member in (int, float)]
    if str in members:
        return str
    expected = " or ".join([_NUMBER_NAMES[number, kind.positive] for number in numbers] + choices)

    def convert(text: str) -> Any:
        if text in choices:
            return text
        for number in numbers:
            try:
                return number(text)
            except ValueError:
                pass
        raise argparse.ArgumentTypeError(f"{text}: expected {expected}" if numbers
                                         else f"{text}: choose from {', '.join(choices)}")

    return convert


_NUMBER_NAMES = {(int, False): "an integer", (int, True): "a positive integer", (float, False): "a number",
                 (float, True): "a positive number"}


def _help(doc: str, item: Field, kind: FieldType, names: set[str]) -> str:
    """The field's docstring as one plain line, ``name`` spelled as its flag, the default appended."""
    text = re.sub(r":\w+:`~?([^`]+)`", r"\1", " ".join(doc.split()))
    text = re.sub(r"``([^`]+)``", lambda match: flag(match[1]) if match[1] in names else match[1], text)
    text = text.removesuffix(".")
    unset = item.default is None or item.default is False or item.default is MISSING or item.default == ()
    if not unset and "(default" not in text:
        shown = " ".join(map(_shown, item.default)) if kind.many else _shown(item.default)
        text += f" (default {shown})"
    return text.replace("%", "%%")


def _shown(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
