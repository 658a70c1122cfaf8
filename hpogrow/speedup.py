"""How much compute a warmstarted run saves against training from scratch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass


def tokens_to_reach(curve: Sequence[tuple[float, float]], loss: float) -> float | None:
    """First token count at which ``curve`` (``(tokens, val_loss)`` pairs, in order) reaches
    ``loss``, interpolating linearly between evaluations; ``None`` if it never does."""
    previous = None
    for tokens, value in curve:
        if value <= loss:
            if previous is None:
                return float(tokens)
            (t0, v0) = previous
            return t0 + (tokens - t0) * (v0 - loss) / (v0 - value)
        previous = (tokens, value)
    return None


@dataclass(frozen=True)
class Speedup:
    """Ratios above 1 mean the warmstarted run needed less than scratch.

    ``tokens``/``flops``: scratch's full budget over what the warmstarted run needed to reach
    scratch's final loss. ``*_with_base`` adds the base model's own training (its tokens, and
    its FLOPs at its own size) to the warmstarted side.
    """

    scratch_final_loss: float
    scratch_tokens: int
    warmstart_tokens_to_match: float | None
    tokens: float | None
    flops: float | None
    tokens_with_base: float | None
    flops_with_base: float | None

    def as_attrs(self) -> dict:
        return {f"speedup_{k}" if k in ("tokens", "flops", "tokens_with_base", "flops_with_base") else k: v
                for k, v in asdict(self).items()}


def compute_speedup(warmstart_curve: Sequence[tuple[float, float]], scratch_curve: Sequence[tuple[float, float]],
                    compute_params: int, base_tokens: int, base_flops: float) -> Speedup:
    """Speedup of a warmstarted run over a scratch run of the same model size and budget."""
    scratch_tokens, scratch_final = scratch_curve[-1]
    needed = tokens_to_reach(warmstart_curve, scratch_final)
    scratch_flops = 6.0 * compute_params * scratch_tokens

    def ratio(numerator: float, denominator: float) -> float | None:
        return numerator / denominator if denominator > 0 else None

    if needed is None:
        return Speedup(scratch_final, int(scratch_tokens), None, None, None, None, None)
    warm_flops = 6.0 * compute_params * needed
    return Speedup(scratch_final, int(scratch_tokens), needed, ratio(scratch_tokens, needed),
                   ratio(scratch_flops, warm_flops), ratio(scratch_tokens, needed + base_tokens),
                   ratio(scratch_flops, warm_flops + base_flops))
