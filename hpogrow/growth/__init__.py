"""Growth operators: ``szp`` (default), ``zero-pad``, ``clone`` (width) and ``stack``,
``zero-block`` (depth). :class:`GrowthOperator` is the extension point."""

from __future__ import annotations

from hpogrow.errors import UsageError
from hpogrow.growth.base import GrowthOperator
from hpogrow.growth.clone import Clone, clone_width
from hpogrow.growth.depth import Stack, ZeroBlock
from hpogrow.growth.szp import ShrinkZeroPadPerturb, ZeroPad, shrink_zero_pad_perturb

OPERATORS: dict[str, type[GrowthOperator]] = {op.name: op for op in (ShrinkZeroPadPerturb, ZeroPad, Clone, Stack, ZeroBlock)}


def parse_operators(spec: str, shrink: float = 0.4, noise_scale: float | None = None
                    ) -> tuple[GrowthOperator | None, GrowthOperator | None]:
    """``"szp"``, ``"zero-block"`` or ``"clone+zero-block"`` → (width operator, depth operator).

    ``noise_scale`` defaults to 1 for ``szp`` and 0 for ``clone``.
    """
    width = depth = None
    for name in spec.split("+"):
        if name not in OPERATORS:
            raise UsageError(f"--grow-op {spec}: unknown operator {name!r}; choose from {', '.join(OPERATORS)} "
                             "or WIDTH+DEPTH such as szp+zero-block")
        cls = OPERATORS[name]
        if cls is ShrinkZeroPadPerturb:
            operator = cls(shrink=shrink, noise_scale=1.0 if noise_scale is None else noise_scale)
        elif cls is Clone:
            operator = cls(noise_scale=0.0 if noise_scale is None else noise_scale)
        else:
            operator = cls()
        if (width if cls.kind == "width" else depth) is not None:
            raise UsageError(f"--grow-op {spec}: give at most one {cls.kind} operator")
        if cls.kind == "width":
            width = operator
        else:
            depth = operator
    return width, depth


__all__ = ["OPERATORS", "Clone", "GrowthOperator", "ShrinkZeroPadPerturb", "Stack", "ZeroBlock", "ZeroPad",
           "clone_width", "parse_operators", "shrink_zero_pad_perturb"]
