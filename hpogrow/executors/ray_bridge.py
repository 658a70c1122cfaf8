"""hpogrow's bridge from Ray Tune to Optuna: a ``ray.tune.search.Searcher`` over ask/tell.

Ray's stock ``OptunaSearch`` gets the record wrong under multi-fidelity schedulers (GUIDE §3).
This searcher runs in the driver, owns every write to the study, and decides each trial's
Optuna state from what the trial itself reported, never from how Tune happened to end it:

- **Intermediate values**: every reported ``val_loss`` becomes ``trial.report(value, step=tokens
  seen)``, from ``on_trial_result`` and again from ``on_trial_complete`` (Tune passes the result
  that triggered a STOP only to the latter, so the last value before a stop is kept).
- **COMPLETE** (value = final loss) only when the last result says ``complete``: the trial ran
  its whole token budget. A trial that HyperBand paused at its full budget and stopped later is
  COMPLETE, because Tune calls ``on_trial_complete`` without a result and the bridge falls back
  on the last result it saw.
- **PRUNED** (the curve kept, value = last intermediate value) when the trial ended before its
  budget: stopped by ASHA at a rung, or paused by HyperBand and never promoted.
- **FAIL** with ``fail_reason`` when the trial reported ``diverged`` (a non-finite loss; the
  trial stopped itself), when Ray reports an error, or when the experiment ended first.

Each Optuna trial records ``role``, ``width``, ``driver`` (this process: a killed driver's
RUNNING trials are recognised by :func:`hpogrow.storage.fail_abandoned_trials`), ``ray_trial_id``,
``node`` (the Ray node id it ran on, from its first report),
``fidelity_reached`` (tokens), ``checkpoint`` (full-budget trials) and the other attributes
:func:`hpogrow.executors.local.record_run` sets.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import optuna
from ray.tune import Callback
from ray.tune.search import Searcher

from hpogrow.errors import UsageError
from hpogrow.space import SearchSpace
from hpogrow.storage import driver_id

TrialState = optuna.trial.TrialState


@dataclass
class _Tracked:
    trial: optuna.Trial
    reported: set[int] = field(default_factory=set)
    curve: list[tuple[int, float]] = field(default_factory=list)
    last: dict[str, Any] | None = None
    resumed_at: list[int] = field(default_factory=list)
    diverged: dict[str, Any] | None = None
    told: bool = False
    node: str | None = None


class OptunaBridge(Searcher):
    """Suggests configurations with ``study.ask`` and tells each trial's true outcome.

    Args:
        study: a study that minimizes (checked).
        space: the distributions to ask with.
        n_trials: trials to ask for; :attr:`Searcher.FINISHED` afterwards.
        user_attrs: set on every asked trial (``role``, ``width``, …).
        on_change: called with ``(trial_number, state, tokens, loss)`` after every event, for
            the live view; ``state`` is an Optuna state name once the trial is told.
        metric: the reported metric that is the objective.
        mode: must be ``"min"``: hpogrow minimizes the validation loss.
    """

    def __init__(self, study: optuna.Study, space: SearchSpace, n_trials: int, *,
                 user_attrs: dict[str, Any] | None = None,
                 on_change: Callable[[int, str | None, int | None, float | None], None] | None = None,
                 metric: str = "val_loss", mode: str = "min") -> None:
        _check_direction(study, mode)
        super().__init__(metric=metric, mode=mode)
        self.study, self.space, self.n_trials = study, space, n_trials
        self.user_attrs = dict(user_attrs or {})
        self.on_change = on_change
        self.by_ray_id: dict[str, _Tracked] = {}
        self.errored: list[int] = []

    # -- Tune's side -------------------------------------------------------------------------

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec) -> bool:
        if mode is not None:
            _check_direction(self.study, mode)
        return metric in (None, self._metric) and mode in (None, self._mode)

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if len(self.by_ray_id) >= self.n_trials:
            return Searcher.FINISHED
        trial = self.study.ask(self.space.distributions())
        for key, value in {**self.user_attrs, "driver": driver_id(), "ray_trial_id": trial_id}.items():
            trial.set_user_attr(key, value)
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

    def fail_leftovers(self, reason: str) -> list[int]:
        """FAIL every asked trial not told yet (the experiment ended or was interrupted first)."""
        left = [t for t in self.by_ray_id.values() if not t.told]
        for tracked in left:
            self._fail(tracked, reason)
        return [t.trial.number for t in left]

    def _record(self, tracked: _Tracked, result: dict[str, Any]) -> None:
        if "tokens_seen" not in result:  # e.g. Tune's bookkeeping result of a trial that never reported
            return
        if result.get("node") and result["node"] != tracked.node:  # where it runs (again, after a restore)
            tracked.node = result["node"]
            tracked.trial.set_user_attr("node", tracked.node)
        if result.get("diverged"):
            tracked.diverged = result
            tracked.last = {**(tracked.last or {}), **result}
            self._changed(tracked.trial.number, None, None, None)
            return
        tokens, loss = int(result["tokens_seen"]), float(result[self._metric])
        resumed = int(result.get("resumed_from") or 0)
        if resumed and resumed not in tracked.resumed_at:
            tracked.resumed_at.append(resumed)
        tracked.last = result
        if tokens not in tracked.reported and math.isfinite(loss):
            tracked.trial.report(loss, step=tokens)
            tracked.reported.add(tokens)
            tracked.curve.append((tokens, loss))
        self._changed(tracked.trial.number, None, tokens, loss)

    def _tell(self, tracked: _Tracked) -> None:
        last, trial = tracked.last, tracked.trial
        if tracked.diverged is not None:
            trial.set_user_attr("fidelity_reached", int(tracked.diverged.get("diverged_at_tokens", 0)))
            self._fail(tracked, str(tracked.diverged.get("fail_reason", "the loss became non-finite")))
            return
        if last is None or not tracked.curve:
            self._fail(tracked, "the trial ended without reporting an evaluation")
            return
        self._set_outcome_attrs(tracked)
        if last.get("complete"):
            if last.get("checkpoint"):
                trial.set_user_attr("checkpoint", str(last["checkpoint"]))
            self.study.tell(trial, tracked.curve[-1][1])
            state = "COMPLETE"
        else:
            self.study.tell(trial, state=TrialState.PRUNED)
            state = "PRUNED"
        tracked.told = True
        self._changed(trial.number, state, None, None)

    def _set_outcome_attrs(self, tracked: _Tracked) -> None:
        last, curve = tracked.last or {}, sorted(tracked.curve)
        tokens = curve[-1][0]
        compute_params = int(last.get("compute_params", 0))
        attrs = {"n_params": last.get("n_params"), "compute_params": compute_params, "tokens": tokens,
                 "flops": 6.0 * compute_params * tokens, "fidelity_reached": tokens,
                 "data_position": last.get("data_position"), "initial_loss": last.get("initial_loss", curve[0][1]),
                 "final_loss": curve[-1][1], "tokens_per_second": last.get("tokens_per_second"),
                 "resumed_at_tokens": tracked.resumed_at, "device": last.get("device")}
        for key, value in attrs.items():
            if value is not None:
                tracked.trial.set_user_attr(key, value)

    def _fail(self, tracked: _Tracked, reason: str) -> None:
        trial = tracked.trial
        if tracked.curve and "fidelity_reached" not in trial.user_attrs:
            trial.set_user_attr("fidelity_reached", sorted(tracked.curve)[-1][0])
        trial.set_user_attr("fail_reason", reason[:500])
        self.study.tell(trial, state=TrialState.FAIL)
        tracked.told = True
        self._changed(trial.number, "FAIL", None, None)

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
