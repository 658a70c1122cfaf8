"""Docstrings read from the source with ``ast``: the docstring under each config field (a flag's
help) and each command class's docstring (its line in ``hpogrow --help``, read without importing
the configs)."""

from __future__ import annotations

import ast
import functools
import sys
from pathlib import Path

COMMANDS_SOURCE = Path(__file__).with_name("commands.py")


def command_docstrings() -> dict[str, str]:
    """Each command's docstring by its ``NAME``, in the order of :mod:`hpogrow.cli.commands`."""
    return {name: ast.get_docstring(node) or "" for node in _module_tree(str(COMMANDS_SOURCE)).body
            if isinstance(node, ast.ClassDef) and (name := _name_of(node))}


def _name_of(node: ast.ClassDef) -> str | None:
    """The string assigned to ``NAME`` in the class body, if any."""
    for statement in node.body:
        if (isinstance(statement, ast.Assign) and [getattr(target, "id", None) for target in statement.targets] == ["NAME"]
                and isinstance(statement.value, ast.Constant)):
            return statement.value.value
    return None


def field_docs(config_class: type) -> dict[str, str]:
    """The docstring under each field of ``config_class`` and its bases."""
    docs: dict[str, str] = {}
    for cls in reversed(config_class.__mro__):
        if hasattr(cls, "__dataclass_fields__"):  # a dataclass or one's subclass: Command mixins have no fields
            docs.update(_class_docs(sys.modules[cls.__module__].__file__, cls.__qualname__))
    return docs


@functools.cache
def _class_docs(path: str, qualname: str) -> dict[str, str]:
    docs = {}
    for node in _module_tree(path).body:
        if isinstance(node, ast.ClassDef) and node.name == qualname:
            for statement, following in zip(node.body, node.body[1:]):
                if (isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name)
                        and isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant)
                        and isinstance(following.value.value, str)):
                    docs[statement.target.id] = following.value.value
    return docs


@functools.cache
def _module_tree(path: str) -> ast.Module:
    with open(path, encoding="utf-8") as source:
        return ast.parse(source.read())
