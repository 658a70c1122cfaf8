"""How a typed record becomes user attributes and back: a frozen dataclass's field names are the
stored keys; a field that is itself a record dataclass is flattened into its parent (so the
dashboard shows every key at the top level), and ``None`` is not stored."""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

Record = TypeVar("Record")


def to_attrs(record: Any, *, defaults: bool = True) -> dict[str, Any]:
    """The flat attributes of ``record`` (nested records inlined, ``None`` left out; with
    ``defaults=False`` every value equal to its field's default too, for writing part of a record)."""
    attrs: dict[str, Any] = {}
    for field in dataclasses.fields(record):
        value = getattr(record, field.name)
        if dataclasses.is_dataclass(value):
            attrs.update(to_attrs(value, defaults=defaults))
        elif value is not None and (defaults or value != field.default):
            attrs[field.name] = list(value) if isinstance(value, tuple) else value
    return attrs


def from_attrs(cls: type[Record], attrs: Mapping[str, Any]) -> Record:
    """``cls`` read back from flat attributes: missing keys take the field's default, a nested
    record is read from the same attributes (``None`` unless they hold all its required fields)."""
    hints = _type_hints(cls)
    values = {}
    for field in dataclasses.fields(cls):
        nested = _record_type(hints[field.name])
        if nested is not None:
            values[field.name] = from_attrs(nested, attrs) if _holds(nested, attrs) else None
        elif field.name in attrs:
            values[field.name] = _tuples(attrs[field.name], hints[field.name])
        elif _required(field) and _admits_none(hints[field.name]):  # stored as absent (None is not written)
            values[field.name] = None
    return cls(**values)


def _holds(cls: type, attrs: Mapping[str, Any]) -> bool:
    """Whether ``attrs`` hold a ``cls``: its required non-optional fields, or (none) any field."""
    hints, every = _type_hints(cls), dataclasses.fields(cls)
    required = [f.name for f in every if _required(f) and not _admits_none(hints[f.name])]
    return all(name in attrs for name in required) if required else any(f.name in attrs for f in every)


def _required(field: dataclasses.Field) -> bool:
    return field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING


def _admits_none(hint: Any) -> bool:
    return type(None) in typing.get_args(hint)


_type_hints = functools.cache(typing.get_type_hints)


def _record_type(hint: Any) -> type | None:
    """The record dataclass of an annotation ``R`` or ``R | None``, else ``None``."""
    candidates = typing.get_args(hint) if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union \
        else (hint,)
    for candidate in candidates:
        if isinstance(candidate, type) and dataclasses.is_dataclass(candidate):
            return candidate
    return None


def _tuples(value: Any, hint: Any) -> Any:
    """A stored value with the lists its annotation declares tuples made tuples again, nested
    ones too (``tuple[tuple[float, float] | None, ...]``: a tuple of pairs or ``None``)."""
    if not isinstance(value, list):
        return value
    candidates = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    declared = next((c for c in candidates if typing.get_origin(c) is tuple), None)
    if declared is None:
        return value
    items = typing.get_args(declared)
    if len(items) == 2 and items[1] is Ellipsis:
        return tuple(_tuples(item, items[0]) for item in value)
    return tuple(_tuples(item, items[index]) if index < len(items) else item for index, item in enumerate(value))
