"""Synchronous successive halving (:mod:`hpogrow.search.halving`) over an Optuna study, for
every executor: the executor trains a wave of trial segments (in process, one after another; on
Ray, as concurrent tasks), this driver claims the trials, records every evaluation and decides.

- A bracket's trials are claimed together (:func:`hpogrow.record.claim_base_trial`), so each
  bracket's sampler sees what every earlier bracket's trials reached.
- A **segment** trains one trial from its last rung checkpoint (none at the first rung) to the
  next rung, where it leaves the checkpoint in ``{checkpoint_dir}/rungs/trial-{n}`` (written
  whole, then renamed into place) and stops; at the budget the trial's own checkpoint is written.
- While its bracket waits at a rung a trial stays RUNNING, its curve up to the rung already in
  the study. A trial the rung cuts is told PRUNED (``fidelity_reached`` = the rung), one that
  reaches the budget COMPLETE, a diverged one FAIL (``diverged``); rung checkpoints are deleted
  as their trials end. If the driver stops (an error, Ctrl-C), every trial of the bracket still
  open is told FAIL, as ``run_in_process`` does for its one trial.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from hpogrow import record
from hpogrow.coordination import Coordinator
from hpogrow.errors import PipelineError, TrainingDiverged
from hpogrow.progress import QUIET, Display, TokensCallback
from hpogrow.runs import BaseTrial, RunSummary, TrialEvent
from hpogrow.search.halving import Halving, run_bracket
from hpogrow.search.schedule import Schedule
from hpogrow.search.space import SearchSpace
from hpogrow.train import Evaluation


@dataclass(frozen=True)
class SegmentJob:
    """Train trial ``number`` (``params``) from the rung checkpoint in ``folder``, if there is
    one, to ``tokens``."""

    base_trial: BaseTrial
    params: dict[str, Any]
    number: int
    tokens: int
    folder: Path


@dataclass
class Segment:
    """What a segment did: its evaluations and the run's summary at its last one."""

    number: int
    evaluations: list[Evaluation] = field(default_factory=list)
    summary: RunSummary | None = None
    diverged: str | None = None
    diverged_at: int = 0


def train_segment(job: SegmentJob, on_tokens: TokensCallback | None = None) -> Segment:
    """Run ``job`` here (in this process or a Ray worker); a divergence is returned, not raised."""
    folder = Path(job.folder)
    budget = job.base_trial.template.tokens
    segment = Segment(job.number)

    def report(event: TrialEvent) -> bool:
        segment.evaluations.append(event.evaluation)
        segment.summary = event.summary
        if event.complete or event.evaluation.tokens_seen < job.tokens:
            return False
        if event.checkpoint is None:
            raise PipelineError(f"base trial {job.number} did not evaluate at the rung of {job.tokens:,} tokens; "
                                "every rung must be one of the template's evaluation points")
        staging = Path(tempfile.mkdtemp(prefix=f".trial-{job.number}-", dir=folder.parent))
        shutil.copytree(event.checkpoint, staging, dirs_exist_ok=True)
        shutil.rmtree(folder, ignore_errors=True)
        staging.rename(folder)  # whole or absent: a crash mid-copy leaves the last rung's folder
        return True

    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        job.base_trial.run(job.params, job.number, report, resume=folder if folder.is_dir() else None,
                           rung_tokens=(job.tokens,) if job.tokens < budget else (), on_tokens=on_tokens)
    except TrainingDiverged as error:
        segment.diverged, segment.diverged_at = str(error), error.tokens_seen
    return segment


TrainWave = Callable[[Sequence[SegmentJob], Display], list[Segment]]
"""How an executor trains a wave of segments (their results in the jobs' order)."""


def run_halving(study: optuna.Study, space: SearchSpace, trials: int, base_trial: BaseTrial, halving: Halving,
                schedule: Schedule, train_wave: TrainWave, display: Display = QUIET,
                coordinator: Coordinator | None = None, on_end: Callable[[int], None] | None = None) -> None:
    """Claim and run brackets until the study holds ``trials`` (see the module docstring);
    ``on_end(number)`` after each trial is told its final state."""
    identity = record.RunRecord(role=record.BASE, width=base_trial.base_width)
    while True:
        claimed: dict[int, optuna.Trial] = {}
        while len(claimed) < halving.bracket:
            trial = record.claim_base_trial(study, space.distributions(), trials, identity, coordinator)
            if trial is None:
                break
            claimed[trial.number] = trial
        if not claimed:
            return
        _Bracket(study, base_trial, claimed, train_wave, display, on_end or (lambda number: None)).run(halving, schedule)


@dataclass
class _Bracket:
    study: optuna.Study
    base_trial: BaseTrial
    open: dict[int, optuna.Trial]
    """The bracket's trials not yet told a final state."""
    train_wave: TrainWave
    display: Display
    on_end: Callable[[int], None]
    summaries: dict[int, RunSummary] = field(default_factory=dict)
    resumed: dict[int, list[int]] = field(default_factory=dict)
    """The rungs each trial continued from."""

    def folder(self, number: int) -> Path:
        return Path(self.base_trial.checkpoint_dir) / "rungs" / f"trial-{number}"

    def run(self, halving: Halving, schedule: Schedule) -> None:
        try:
            run_bracket(sorted(self.open), halving, schedule, self.wave, self.stop)
        except BaseException as error:
            interrupted = isinstance(error, (KeyboardInterrupt, SystemExit))
            for number, trial in list(self.open.items()):
                if interrupted:
                    record.mark_abandoned(trial)
                self.end(number, lambda: record.fail(self.study, trial, "interrupted" if interrupted
                                                     else f"{type(error).__name__}: {error}"))
            raise

    def wave(self, numbers: Sequence[int], tokens: int) -> dict[int, float]:
        jobs = [SegmentJob(self.base_trial, self.open[n].params, n, tokens, self.folder(n)) for n in numbers]
        losses = {}
        for segment in self.train_wave(jobs, self.display):
            trial = self.open[segment.number]
            for evaluation in segment.evaluations:
                record.report(trial, evaluation)
            if segment.summary is not None:
                segment.summary.extra["resumed_at_tokens"] = tuple(self.resumed.get(segment.number, ()))
                self.summaries[segment.number] = segment.summary
            if segment.diverged is not None:
                losses[segment.number] = math.nan
                self.end(segment.number, lambda: record.fail(self.study, trial, segment.diverged,
                                                             fidelity_reached=segment.diverged_at, diverged=True))
                continue
            last = segment.evaluations[-1]
            losses[segment.number] = last.val_loss
            if tokens == self.base_trial.template.tokens:
                self.end(segment.number, lambda: record.finish(self.study, trial, segment.summary, complete=True))
        for number in numbers:
            self.resumed.setdefault(number, []).append(tokens)  # where its next segment continues
        return losses

    def stop(self, number: int) -> None:
        trial = self.open[number]
        self.end(number, lambda: record.finish(self.study, trial, self.summaries[number], complete=False))

    def end(self, number: int, tell: Callable[[], Any]) -> None:
        tell()
        del self.open[number]
        shutil.rmtree(self.folder(number), ignore_errors=True)
        self.on_end(number)
