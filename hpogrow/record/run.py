"""What a trial records about its run: :class:`RunRecord` (who it is, its summary, the facts of
where and how it ran, its growth lineage and its pair's speedup) and :class:`SpeedupRecord` (the
speedup over a search's pairs). Field names are the stored user-attribute keys.

Example::

    run = RunRecord.of(study.trials[3])
    print(run.role, run.width, run.final_loss, run.lineage and run.lineage.param_ratio)
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from hpogrow.record.codec import from_attrs, to_attrs
from hpogrow.record.lineage import GrowthLineage
from hpogrow.runs import RunSummary
from hpogrow.speedup import SpeedupEstimate

BASE, WARMSTART, SCRATCH, REPLICATE = "base", "warmstart", "scratch", "replicate base"
"""Roles of a search's trials (an intermediate stage is ``stage K``). A replicate base is the
search's winning configuration retrained at the base width with another seed, in the target
study: the pairs grow several independently trained bases (``--bases``)."""


@dataclass(frozen=True)
class RunFacts:
    """Where and how a run ran, beyond its summary; every field optional."""

    device: str | None = None
    mfu: float | None = None
    """Model FLOPs utilisation (on CUDA)."""
    data_passes: float | None = None
    """Passes over a finite training set by the run's data position (above 1: a token was read twice)."""
    flops_with_attention: float | None = None
    """The run's FLOPs counting attention scores too (speedups use 6·N·D)."""
    val_loss_se: float | None = None
    """Standard error of the final validation loss over the eval set."""
    node: str | None = None
    """The Ray node that ran it (its id)."""
    node_ip: str | None = None
    ray_task_id: str | None = None
    resumed_at_tokens: tuple[int, ...] | None = None
    """Token counts at which the run was resumed from a checkpoint (empty: never)."""
    resume_refused: str | None = None
    """Why a partial checkpoint found in the run's folder was not used (:mod:`hpogrow.resume`)."""
    workers: int | None = None
    """Data-parallel workers that trained it (target runs on Ray Train)."""

    @classmethod
    def from_dict(cls, facts: dict[str, Any]) -> RunFacts:
        """Facts from a run's ``extra`` dictionary (unknown keys are an error: name them here)."""
        unknown = set(facts) - {field.name for field in fields(cls)}
        if unknown:
            raise KeyError(f"run facts {sorted(unknown)} are not fields of RunFacts")
        return cls(**facts)


@dataclass(frozen=True)
class HorizonTransfer:
    """The learning rate a target run trained at, and the token-horizon correction that set it
    (``--horizon-transfer``, :mod:`hpogrow.search.horizon`): the base winner's rate ×
    (run tokens / base tokens)^(−α)."""

    horizon_transfer: str
    """The mode: ``auto`` or ``off``."""
    horizon_factor: float
    """The multiplier applied to the winner's learning rate (1 under ``off``)."""
    trained_learning_rate: float
    """The learning rate the run trained at (the trial's ``learning_rate`` param is the winner's)."""
    horizon_alpha: float | None = None
    """α of lr* ∝ tokens^(−α) (``None``: none applied)."""
    horizon_alpha_ci: tuple[float, float] | None = None
    """Its 95% interval."""
    horizon_source: str | None = None
    """Where α came from: the base study's own trials, the bench's measured constant, or why none."""
    horizon_base_tokens: int | None = None
    horizon_run_tokens: int | None = None
    warmstart_lr_scale: float | None = None
    """``--warmstart-lr-scale``, for a run grown from a base (warmstart, stage); part of
    ``trained_learning_rate``."""


@dataclass(frozen=True)
class SpeedupRecord:
    """The speedup of warmstart over scratch over a search's pairs
    (:class:`hpogrow.speedup.SpeedupEstimate`), with the final-loss gap beside the eval error and
    tokens-to-match at several loss targets (``speedup_match_*``, one entry per target)."""

    speedup_tokens: float
    speedup_tokens_ci: tuple[float, float] | None
    speedup_flops: float
    speedup_flops_ci: tuple[float, float] | None
    speedup_tokens_with_base: float
    speedup_tokens_with_base_ci: tuple[float, float] | None
    speedup_flops_with_base: float
    speedup_flops_with_base_ci: tuple[float, float] | None
    seeds: int
    seeds_reached: int
    speedup_bound: str | None
    speedup_seed: tuple[int | None, ...]
    speedup_censoring: tuple[str, ...]
    speedup_target_loss: tuple[float, ...]
    speedup_warmstart_tokens: tuple[float, ...]
    speedup_scratch_tokens: tuple[float, ...]
    speedup_tokens_per_seed: tuple[float, ...]
    speedup_flops_per_seed: tuple[float, ...]
    speedup_tokens_with_base_per_seed: tuple[float, ...]
    speedup_flops_with_base_per_seed: tuple[float, ...]
    speedup_summary: str = ""
    final_loss_gap: float | None = None
    """Final validation loss, warmstart − scratch, mean over pairs."""
    final_loss_gap_per_pair: tuple[float, ...] | None = None
    eval_gap_se: float | None = None
    """The eval set's standard error of a pair's gap (both models scored on the same units), largest over pairs."""
    gap_in_eval_se: float | None = None
    speedup_bases: int = 1
    """Independently trained bases the pairs grew (pair k grows base k mod bases); with 2 or more
    the intervals resample them (records from before ``--bases``: 1)."""
    speedup_base_per_seed: tuple[int, ...] | None = None
    """The base each pair grew (0: the search's winner; k ≥ 1: replicate base k)."""
    speedup_match_fraction: tuple[float, ...] = ()
    """Loss targets of tokens-to-match: scratch's smoothed loss at these shares of its budget."""
    speedup_match_target_loss: tuple[float, ...] = ()
    """Each target's loss, mean over pairs."""
    speedup_match_tokens: tuple[float, ...] = ()
    """Scratch's tokens to each target over the warmstart's (its own tokens), geometric mean with the bases weighted alike."""
    speedup_match_tokens_ci: tuple[tuple[float, float] | None, ...] = ()
    speedup_match_flops_with_base: tuple[float, ...] = ()
    """As ``speedup_match_tokens`` in FLOPs, the cost of the pair's own base added to the warmstart."""
    speedup_match_flops_with_base_ci: tuple[tuple[float, float] | None, ...] = ()
    speedup_match_reached: tuple[int, ...] = ()
    """Pairs whose warmstart reached each target (the others count at their bound)."""

    @classmethod
    def from_estimate(cls, estimate: SpeedupEstimate, gaps: Sequence[float] = (), eval_gap_se: float | None = None,
                      matches: Sequence[tuple[float, SpeedupEstimate]] = ()) -> SpeedupRecord:
        """The record of ``estimate``, with each pair's final-loss gap and the eval set's standard
        error of such a gap (the gap spans ``gap_in_eval_se`` of them: above ~3 the eval set
        resolves it), and ``matches``: ``(fraction, estimate)`` of tokens-to-match at scratch's
        loss at that share of its budget. The summary line leads with FLOPs with the base's cost."""
        per_seed = estimate.per_seed
        gap = statistics.fmean(gaps) if gaps else None
        spans = None if gap is None or eval_gap_se is None else (abs(gap) / eval_gap_se if eval_gap_se > 0 else math.inf)
        measures = {}
        for measure in ("tokens", "flops", "tokens_with_base", "flops_with_base"):
            interval = getattr(estimate, f"{measure}_ci")
            measures[f"speedup_{measure}"] = getattr(estimate, measure)
            measures[f"speedup_{measure}_ci"] = None if interval is None else tuple(interval)
            measures[f"speedup_{measure}_per_seed"] = tuple(getattr(pair, measure) for pair in per_seed)
        return cls(**measures, seeds=estimate.seeds, seeds_reached=estimate.seeds_reached, speedup_bound=estimate.bound,
                   speedup_seed=tuple(pair.seed for pair in per_seed),
                   speedup_censoring=tuple(pair.censoring for pair in per_seed),
                   speedup_target_loss=tuple(pair.target_loss for pair in per_seed),
                   speedup_warmstart_tokens=tuple(pair.warmstart_tokens for pair in per_seed),
                   speedup_scratch_tokens=tuple(pair.scratch_tokens for pair in per_seed),
                   speedup_summary="FLOPs with the base's cost: " + estimate.describe("flops_with_base"),
                   final_loss_gap=gap, final_loss_gap_per_pair=tuple(gaps) or None, eval_gap_se=eval_gap_se,
                   gap_in_eval_se=spans, speedup_bases=estimate.bases,
                   speedup_base_per_seed=tuple(pair.base for pair in per_seed),
                   speedup_match_fraction=tuple(fraction for fraction, _ in matches),
                   speedup_match_target_loss=tuple(statistics.fmean(p.target_loss for p in match.per_seed)
                                                   for _, match in matches),
                   speedup_match_tokens=tuple(match.tokens for _, match in matches),
                   speedup_match_tokens_ci=tuple(match.tokens_ci for _, match in matches),
                   speedup_match_flops_with_base=tuple(match.flops_with_base for _, match in matches),
                   speedup_match_flops_with_base_ci=tuple(match.flops_with_base_ci for _, match in matches),
                   speedup_match_reached=tuple(match.seeds_reached for _, match in matches))

    def as_attrs(self) -> dict[str, Any]:
        return to_attrs(self)


@dataclass(frozen=True)
class RunRecord:
    """A trial's record of its run. Written in parts as the run goes (:meth:`identity_attrs` at
    creation, :meth:`summary_attrs` when it ends) and read whole by :meth:`of`."""

    role: str | None = None
    """``base``, ``warmstart``, ``scratch`` or ``stage K`` (a search); ``transfer``; a ladder role (advise)."""
    width: int | None = None
    driver: str | None = None
    """``host:pid`` of the driver process that created the trial."""
    pair: int = 0
    """Warmstart/scratch pair (target trials)."""
    seed: int | None = None
    stage: int | None = None
    """Stage number of an intermediate stage of successive warmstarting."""
    base_trial: int | None = None
    """The base trial a target run was grown from (its number in ``base_study``)."""
    base_study: str | None = None
    base_replicate: int | None = None
    """Which of the search's bases a target run belongs to: a replicate base's own index, or the
    base a warmstart or stage run grew (0: the winner itself); ``None`` on scratch runs (they grow
    nothing) and on records from before ``--bases`` (read as 0)."""
    ray_trial_id: str | None = None
    """The Ray Tune trial that ran a base trial."""
    schedule: str | None = None
    """The learning-rate schedule it trained with."""
    # the summary (hpogrow.runs.RunSummary), written when the run ends
    n_params: int | None = None
    compute_params: int | None = None
    """Parameters that do matmul work: the N of 6·N·D."""
    tokens: int | None = None
    flops: float | None = None
    fidelity_reached: int = 0
    """Tokens the run had seen when it ended (equal to ``tokens`` for a finished run)."""
    data_position: int | None = None
    initial_loss: float | None = None
    final_loss: float | None = None
    tokens_per_second: float | None = None
    checkpoint: str | None = None
    facts: RunFacts | None = None
    # how it failed
    fail_reason: str | None = None
    diverged: bool = False
    """A non-finite loss (the sampler learns from these)."""
    abandoned: bool = False
    """Its driver died: told FAIL, not counted towards ``--trials``."""
    # a warmstarted (or stage) run
    lineage: GrowthLineage | None = None
    pair_speedup_tokens: float | None = None
    """This pair's own speedup in tokens."""
    pair_censoring: str | None = None
    speedup: SpeedupRecord | None = None
    """Over every pair of the search, on each warmstarted trial (also the target study's ``speedup``)."""
    horizon: HorizonTransfer | None = None
    """A target run's learning rate and its token-horizon correction (``None``: records from before
    ``--horizon-transfer``, trained at the winner's rate)."""

    @classmethod
    def of(cls, trial) -> RunRecord:
        """The record of a trial (frozen or live)."""
        return from_attrs(cls, trial.user_attrs)

    def identity_attrs(self) -> dict[str, Any]:
        """The attributes a trial is created with: who it is and its lineage, without summary or outcome."""
        return {key: value for key, value in to_attrs(self).items() if key in _IDENTITY}


_IDENTITY = frozenset(("role", "width", "driver", "pair", "seed", "stage", "base_trial", "base_study", "base_replicate",
                       "ray_trial_id", "schedule",
                       *(field.name for field in fields(GrowthLineage)),
                       *(field.name for field in fields(HorizonTransfer))))
_SUMMARY = frozenset(("n_params", "compute_params", "tokens", "flops", "fidelity_reached", "data_position",
                      "initial_loss", "final_loss", "tokens_per_second", "checkpoint",
                      *(field.name for field in fields(RunFacts))))


def summary_attrs(summary: RunSummary) -> dict[str, Any]:
    """The user attributes a run's summary becomes (with its facts)."""
    record = RunRecord(n_params=summary.n_params, compute_params=summary.compute_params, tokens=summary.tokens,
                       flops=summary.flops, fidelity_reached=summary.tokens, data_position=summary.data_position,
                       initial_loss=summary.initial_loss, final_loss=summary.final_loss,
                       tokens_per_second=summary.tokens_per_second, checkpoint=summary.checkpoint,
                       facts=RunFacts.from_dict(summary.extra) if summary.extra else None)
    return {key: value for key, value in to_attrs(record).items() if key in _SUMMARY}
