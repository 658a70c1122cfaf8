"""Operators by name: the built-ins, any a user registers, and ``--grow-op`` specs.

A spec names one width operator, one depth operator, or ``WIDTH+DEPTH`` (``szp+zero-block``).
The registry is the one piece of module state in :mod:`hpogrow.growth`: a name typed on the
command line or stored in a study has to find its class somewhere. Growth runs in the process
that calls :func:`~hpogrow.growth.grow_checkpoint` (the pipeline's driver, never a Ray worker),
so registering there is enough.
"""

from __future__ import annotations

from hpogrow.errors import UsageError
from hpogrow.growth.base import GrowthOperator
from hpogrow.growth.clone import Clone
from hpogrow.growth.depth import Stack, ZeroBlock
from hpogrow.growth.szp import ShrinkZeroPadPerturb, ZeroPad

OPERATORS: dict[str, type[GrowthOperator]] = {op.name: op for op in (ShrinkZeroPadPerturb, ZeroPad, Clone, Stack, ZeroBlock)}
"""Every operator ``--grow-op`` can name, by name (built-ins first, then registered ones)."""


def register_operator(operator: type[GrowthOperator], *, replace: bool = False) -> type[GrowthOperator]:
    """Make ``operator`` available to ``--grow-op``, ``grow_checkpoint`` and ``SearchConfig.grow_op``.

    Usable as a class decorator. The class needs ``name``, ``kind`` (``"width"`` or ``"depth"``)
    and ``preserves_function``, and may set ``uses_shrink``, ``pads_optimizer_state`` and
    override ``from_options`` (see :class:`GrowthOperator`).

    Args:
        operator: a :class:`GrowthOperator` subclass.
        replace: allow replacing an operator already registered under the same name.

    Returns:
        ``operator`` itself.

    Raises:
        UsageError: the class is not a complete growth operator, or its name is taken.
    """
    if not (isinstance(operator, type) and issubclass(operator, GrowthOperator)):
        raise UsageError(f"register_operator({operator!r}): pass a subclass of hpogrow.growth.GrowthOperator")
    name = getattr(operator, "name", None)
    if not isinstance(name, str) or not name or "+" in name or name != name.strip():
        raise UsageError(f"operator {operator.__name__}: set a class attribute name (a word without '+' or spaces)")
    if getattr(operator, "kind", None) not in ("width", "depth"):
        raise UsageError(f"operator {name!r}: set kind to 'width' or 'depth'")
    if not isinstance(getattr(operator, "preserves_function", None), str):
        raise UsageError(f"operator {name!r}: set preserves_function, one line saying when it preserves the function")
    if operator.__abstractmethods__:
        raise UsageError(f"operator {name!r}: implement {', '.join(sorted(operator.__abstractmethods__))}")
    if name in OPERATORS and OPERATORS[name] is not operator and not replace:
        raise UsageError(f"operator name {name!r} is taken by {OPERATORS[name].__name__}; choose another name "
                         "or pass replace=True")
    OPERATORS[name] = operator
    return operator


def parse_operators(spec: str, shrink: float = 0.4, noise_scale: float | None = None
                    ) -> tuple[GrowthOperator | None, GrowthOperator | None]:
    """``"szp"``, ``"zero-block"`` or ``"clone+zero-block"`` → (width operator, depth operator).

    Each operator is built by its ``from_options(shrink, noise_scale)``; ``noise_scale=None``
    keeps every operator's own default (1 for ``szp``, :data:`~hpogrow.growth.clone.CLONE_NOISE_SCALE`
    for ``clone``).
    """
    operators: dict[str, GrowthOperator] = {}
    for name in spec.split("+"):
        cls = operator_class(name, spec)
        if cls.kind in operators:
            raise UsageError(f"--grow-op {spec}: give at most one {cls.kind} operator")
        operators[cls.kind] = cls.from_options(shrink, noise_scale)
    return operators.get("width"), operators.get("depth")


def operator_class(name: str, spec: str | None = None) -> type[GrowthOperator]:
    """The registered class called ``name``; a usage error naming the choices otherwise."""
    if name not in OPERATORS:
        raise UsageError(f"--grow-op {spec or name}: unknown operator {name!r}; choose from {', '.join(OPERATORS)} "
                         "or WIDTH+DEPTH such as szp+zero-block")
    return OPERATORS[name]


def uses_shrink(spec: str) -> bool:
    """Whether ``--shrink`` acts in any operator of ``spec``. Names not registered in this
    process (a study written by another with its own operator) count as not using it."""
    return any(OPERATORS[name].uses_shrink for name in spec.split("+") if name in OPERATORS)
