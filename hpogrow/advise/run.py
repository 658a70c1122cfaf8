"""``hpogrow advise``: run (or reuse) the ladder, fit, check out of sample, predict, record."""

from __future__ import annotations

import math
import time
from pathlib import Path

import optuna
import optuna_dashboard
from rich.console import Console

from hpogrow import record
from hpogrow.advise.advice import Advice, analyse, loss_floor
from hpogrow.advise.config import AdviseConfig
from hpogrow.advise.ladder import check_ladder_supply, run_ladder, signature
from hpogrow.advise.view import advice_note, plot_advice, print_advice
from hpogrow.errors import UsageError
from hpogrow.progress import QUIET, Display
from hpogrow.parametrize import count_parameters_at
from hpogrow.storage import default_storage_url, load_or_create_study, open_storage
from hpogrow.tasks.base import Task
from hpogrow.train import torch_threads


def advice_study_name(task_name: str) -> str:
    return f"{task_name}-advice"


def advise(task: Task, config: AdviseConfig = AdviseConfig(), console: Console | None = None,
           display: Display = QUIET) -> Advice:
    """Advise on growth for a target size and budget, from a ladder of cheap runs.

    Example (CPU, a few minutes)::

        import hpogrow
        from hpogrow.advise import AdviseConfig, advise
        task = hpogrow.FourierTask(modes=64, eval_examples=256)
        advice = advise(task, AdviseConfig(widths=(16, 24, 32), tokens=64 * 200, growth_factors=(2, 3, 4),
                                           pair_tokens_per_param=(5,), workdir="/tmp/advise-example"))
        print(advice.recommended_growth_factor, advice.max_growth_factor)

    Raises:
        UsageError: bad widths, factors or budgets (before anything is written).
    """
    start = time.perf_counter()
    console = console or Console()
    config = config.for_task(task)
    check_ladder_supply(task, config)
    target_params = config.target_params or count_parameters_at(task, config.target_width or 8 * config.base_width).total
    storage_url = config.storage or default_storage_url(config.workdir)
    study_name = config.study or advice_study_name(task.name)
    study = load_or_create_study(open_storage(storage_url), study_name, signature(task, config))
    scratch_runs, pairs, trained = run_ladder(task, config, study, console, display)
    with torch_threads(config.threads):  # the fits are small too
        advice = analyse(config, scratch_runs, pairs, target_params, task.name, study_name, storage_url,
                         loss_floor(task))
    advice.trained = trained
    advice.plots = plot_advice(advice, scratch_runs, Path(config.workdir) / "plots")
    record_advice(study, advice)
    advice.seconds = time.perf_counter() - start
    print_advice(advice, console)
    return advice


def record_advice(study: optuna.Study, advice: Advice) -> None:
    """The study attribute ``advice``, the figures as artifacts, the dashboard note."""
    from hpogrow.search.report import attach_plot  # imports optuna only; kept local like the plotting

    for plot in advice.plots:
        attach_plot(study, plot, Path(advice.config.workdir) / "artifacts")
    record.write_advice(study, advice.summary())
    optuna_dashboard.save_note(study, advice_note(advice))


def stored_advice(storage_url: str, task_name: str) -> dict:
    """The ``advice`` attribute of the task's advice study in ``storage_url``.

    Raises:
        UsageError: no such study or attribute (run ``hpogrow advise`` first).
    """
    name = advice_study_name(task_name)
    missing_file = storage_url.startswith("sqlite:///") and not Path(storage_url[len("sqlite:///"):]).exists()
    try:  # a missing SQLite file stays missing: nothing is written on this error
        study = None if missing_file else optuna.load_study(study_name=name, storage=open_storage(storage_url))
    except KeyError:
        study = None
    advice = None if study is None else record.read_advice(study)
    if not advice:
        raise UsageError(f"--grow-factor auto: no growth advice for task {task_name!r} in this storage (study {name!r}); "
                         f"run `hpogrow advise --task {task_name}` with the same --storage/--workdir first, "
                         "or give a number")
    return advice


def _evidence(advice: dict) -> str:
    """The stored advice's out-of-sample check of the loss law and its extrapolation, one clause."""
    held = advice.get("holdout_by_width") or []
    errors = ", ".join(f"w{h['width']} {h['error']:.1f}" for h in held if h.get("error") is not None)
    extrapolation = advice.get("extrapolation") or {}
    beyond = [f"{name} ×{factor:.1f}" for part, factors in extrapolation.items() if isinstance(factors, dict)
              for name, factor in ((f"{part} {key}", value) for key, value in factors.items()) if factor > 1]
    return (f"loss law fitted without each width misses it by {errors} seed spreads" if errors else
            "no width-holdout check stored") + ("; extrapolated: " + ", ".join(beyond) if beyond else "")


def auto_growth_factor(storage_url: str, task_name: str, tokens_per_param: float | None = None) -> tuple[float, str]:
    """The g of ``--grow-factor auto`` and the sentence the plan prints about it.

    Raises:
        UsageError: no stored advice, or advice that no g pays.
    """
    advice = stored_advice(storage_url, task_name)
    factor = advice.get("recommended_growth_factor")
    source = f"`hpogrow advise` (study {advice_study_name(task_name)!r})"
    if factor is None:
        raise UsageError(f"--grow-factor auto: the growth advice of {source} predicts that no g pays at "
                         f"{advice['target_params']:,} params and {advice['tokens_per_param']:g} tokens/param "
                         "(scratch is cheaper); give --grow-factor explicitly or rerun hpogrow advise for another target")
    mean, low, high = advice["predicted_speedup"]
    bound = advice.get("max_growth_factor")
    caveat = "" if advice.get("recommendation_significant") else " (not significant: its interval reaches below 1)"
    reason = (f"auto: g {factor:g}, recommended by {source} for {advice['target_params']:,} params at "
              f"{advice['tokens_per_param']:g} tokens/param: predicted FLOPs speedup counting the base {mean:.2f}× "
              f"(95% {low:.2f}–{high:.2f}){caveat}, the highest of g {[p['g'] for p in advice['predictions']]}; "
              + ("no g up to 64 predicted where scratch is cheaper" if bound is None
                 else f"scratch predicted cheaper beyond g ≈ {bound:.2f}")
              + f"; {_evidence(advice)}")
    if tokens_per_param is not None and not math.isclose(tokens_per_param, advice["tokens_per_param"], rel_tol=0.25):
        reason += (f" (the advice is for {advice['tokens_per_param']:g} tokens/param, this search runs "
                   f"{tokens_per_param:g}: rerun hpogrow advise --tokens-per-param {tokens_per_param:g} for a closer fit)")
    return float(factor), reason
