"""hpogrow's bridge from Ray Tune to Optuna: a ``ray.tune.search.Searcher`` over ask/tell.

Ray's stock ``OptunaSearch`` gets the record wrong under multi-fidelity schedulers (docs/method.md, "Optuna and Ray Tune").
This searcher runs in the driver and decides each trial's Optuna state from what the trial
itself reported, never from how Tune happened to end it; the writes go through
:mod:`hpogrow.record`, like every other run's:

- **Trials** are claimed with :func:`hpogrow.record.claim_base_trial` (so several drivers share a
  study without overshooting ``--trials``); :attr:`Searcher.FINISHED` once the study is full.
- **Intermediate values**: every reported ``val_loss`` at ``step = tokens seen``, from
  ``on_trial_result`` and again from ``on_trial_complete`` (Tune passes the result that
  triggered a STOP only to the latter, so the last value before a stop is kept).
- **COMPLETE** only when the last result says ``complete``: the trial ran its whole token
  budget. A trial that HyperBand paused at its full budget and stopped later is COMPLETE,
  because Tune calls ``on_trial_complete`` without a result and the bridge falls back on the
  last result it saw.
- **PRUNED** (the curve kept) when the trial ended before its budget: stopped by ASHA at a rung,
  or paused by HyperBand and never promoted.
- **FAIL** with ``fail_reason`` when the trial reported ``diverged`` (a non-finite loss; the
  trial stopped itself; ``diverged = True`` teaches the sampler), when Ray reports an error, or
  when the experiment ended first.

Each trial also records ``ray_trial_id``, ``node`` and ``node_ip`` (where it ran), and
``resumed_at_tokens`` (where HyperBand resumed it from a rung checkpoint).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import optuna
from ray.tune import Callback
from ray.tune.search import Searcher

from hpogrow import record
from hpogrow.coordination import Coordinator
from hpogrow.errors import UsageError
from hpogrow.record.run import RunFacts, RunRecord
from hpogrow.runs import RunSummary
from hpogrow.search.space import SearchSpace
from hpogrow.train import Evaluation

TrialState = optuna.trial.TrialState


@dataclass
class _Tracked:
    trial: optuna.Trial
    curve: list[tuple[int, float]] = field(default_factory=list)
    last: dict[str, Any] | None = None
    resumed_at: list[int] = field(default_factory=list)
    diverged: dict[str, Any] | None = None
    node: str | None = None
    told: bool = False


class OptunaBridge(Searcher):
    """Suggests configurations with ``study.ask`` and tells each trial's true outcome.

    Args:
        study: a study that minimizes (checked).
        space: the distributions to ask with.
        trials: base trials the study should hold (other live drivers' included);
            :attr:`Searcher.FINISHED` afterwards.
        identity: written on every asked trial (its role, width, …), with its Ray trial id.
        coordinator: the storage's locks, shared with other drivers (``None``: this driver alone).
        on_change: called with ``(trial_number, state, tokens, loss)`` after every event, for
            the live view; ``state`` is an Optuna state name once the trial is told.
        metric: the reported metric that is the objective.
        mode: must be ``"min"``: hpogrow minimizes the validation loss.
    """

    def __init__(self, study: optuna.Study, space: SearchSpace, trials: int, *,
                 identity: RunRecord = RunRecord(), coordinator: Coordinator | None = None,
                 on_change: Callable[[int, str | None, int | None, float | None], None] | None = None,
                 metric: str = "val_loss", mode: str = "min") -> None:
        _check_direction(study, mode)
        super().__init__(metric=metric, mode=mode)
        self.study, self.space, self.trials = study, space, trials
        self.identity, self.coordinator = identity, coordinator
        self.on_change = on_change
        self.by_ray_id: dict[str, _Tracked] = {}
        self.errored: list[int] = []

    # -- Tune's side -------------------------------------------------------------------------

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec) -> bool:
        if mode is not None:
            _check_direction(self.study, mode)
        return metric in (None, self._metric) and mode in (None, self._mode)

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        trial = record.claim_base_trial(self.study, self.space.distributions(), self.trials,
                                        replace(self.identity, ray_trial_id=trial_id), self.coordinator)
        if trial is None:
            return Searcher.FINISHED
        self.by_ray_id[trial_id] = _Tracked(trial)
        self._changed(trial.number, "PENDING", None, None)
        return {"params": dict(trial.params), "trial_number": trial.number}

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        tracked = self.by_ray_id.get(trial_id)
        if tracked is not None and not tracked.told:
            self._record(tracked, result)

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        tracked = self.by_ray_id.get(trial_id)
        if tracked is None or tracked.told:
            return
        if result:
            self._record(tracked, result)
        if error:
            self._fail(tracked, "the Ray trial raised an error (see the trial's error.txt under the Ray storage path)")
            self.errored.append(tracked.trial.number)
        else:
            self._tell(tracked)

    def save(self, checkpoint_path: str) -> None:
        """Nothing to save: the Optuna study is the searcher's state (resume = a fresh Tuner)."""
        with open(checkpoint_path, "w") as handle:
            json.dump({"study": self.study.study_name, "asked": [t.trial.number for t in self.by_ray_id.values()]}, handle)

    def restore(self, checkpoint_path: str) -> None:
        raise NotImplementedError("hpogrow resumes a search with a fresh Tuner, not Tuner.restore")

    def __getstate__(self) -> dict[str, Any]:
        """What Tune pickles into its ``tuner.pkl``: a name only. The live bridge holds a storage
        connection and the console; it is never unpickled (resume = a fresh Tuner)."""
        return {"study_name": self.study.study_name}

    # -- the record --------------------------------------------------------------------------

    def fail_leftovers(self, reason: str, abandoned: bool = False) -> list[int]:
        """FAIL every asked trial not told yet (the experiment ended or was interrupted first);
        ``abandoned`` ones do not count towards the study's trials."""
        left = [t for t in self.by_ray_id.values() if not t.told]
        for tracked in left:
            if abandoned:
                record.mark_abandoned(tracked.trial)
            self._fail(tracked, reason)
        return [t.trial.number for t in left]

    def _record(self, tracked: _Tracked, result: dict[str, Any]) -> None:
        if "tokens_seen" not in result:  # e.g. Tune's bookkeeping result of a trial that never reported
            return
        if result.get("node") and tracked.node != result["node"]:  # where it runs (again, if resumed elsewhere)
            tracked.node = result["node"]
            record.write(tracked.trial, RunRecord(facts=RunFacts(node=result["node"], node_ip=result.get("node_ip"))))
        if result.get("diverged"):
            tracked.diverged = result
            self._changed(tracked.trial.number, None, None, None)
            return
        evaluation = Evaluation(int(result.get("step", 0)), int(result["tokens_seen"]), float(result[self._metric]),
                                result.get("train_loss"))
        resumed = int(result.get("resumed_from") or 0)
        if resumed and resumed not in tracked.resumed_at:
            tracked.resumed_at.append(resumed)
        tracked.last = result
        record.report(tracked.trial, evaluation)
        if evaluation.tokens_seen not in dict(tracked.curve):
            tracked.curve.append((evaluation.tokens_seen, evaluation.val_loss))
        self._changed(tracked.trial.number, None, evaluation.tokens_seen, evaluation.val_loss)

    def _tell(self, tracked: _Tracked) -> None:
        if tracked.diverged is not None:
            record.fail(self.study, tracked.trial, str(tracked.diverged.get("fail_reason", "the loss became non-finite")),
                        fidelity_reached=int(tracked.diverged.get("diverged_at_tokens", 0)), diverged=True)
            self._told(tracked, "FAIL")
            return
        if tracked.last is None or not tracked.curve:
            self._fail(tracked, "the trial ended without reporting an evaluation")
            return
        tokens, loss = max(tracked.curve)
        summary = RunSummary(**{**json.loads(tracked.last["summary"]), "tokens": tokens, "final_loss": loss})
        state = record.finish(self.study, tracked.trial, summary, complete=bool(tracked.last.get("complete")),
                              also=RunRecord(facts=RunFacts(resumed_at_tokens=tuple(tracked.resumed_at))))
        self._told(tracked, state.name)

    def _fail(self, tracked: _Tracked, reason: str) -> None:
        tokens = max(tracked.curve)[0] if tracked.curve else None
        record.fail(self.study, tracked.trial, reason, fidelity_reached=tokens)
        self._told(tracked, "FAIL")

    def _told(self, tracked: _Tracked, state: str) -> None:
        tracked.told = True
        self._changed(tracked.trial.number, state, None, None)

    def _changed(self, number: int, state: str | None, tokens: int | None, loss: float | None) -> None:
        if self.on_change is not None:
            self.on_change(number, state, tokens, loss)


class TrialStatusCallback(Callback):
    """Passes Ray's states of live trials (PENDING, RUNNING, PAUSED) to the live table."""

    def __init__(self, bridge: OptunaBridge, board) -> None:
        self.bridge, self.board = bridge, board

    def __getstate__(self) -> dict[str, Any]:
        return {}  # pickled into Tune's tuner.pkl only, never restored

    def on_step_end(self, iteration: int, trials: list, **info) -> None:
        for trial in trials:
            tracked = self.bridge.by_ray_id.get(trial.trial_id)
            if tracked is not None and not tracked.told and trial.status in ("PENDING", "RUNNING", "PAUSED"):
                self.board.update(tracked.trial.number, state=trial.status)


def _check_direction(study: optuna.Study, mode: str) -> None:
    if mode != "min":
        raise UsageError(f"mode {mode!r}: hpogrow minimizes the validation loss; use mode 'min'")
    if study.direction != optuna.study.StudyDirection.MINIMIZE:
        raise UsageError(f"study {study.study_name!r} maximizes; hpogrow minimizes the validation loss: pass a new --study")
