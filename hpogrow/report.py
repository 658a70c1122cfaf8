"""Tables and plots of a study, as printed at the end of ``hpogrow search`` and by ``hpogrow report``."""

from __future__ import annotations

from pathlib import Path

import optuna
from rich.console import Console
from rich.table import Table

from hpogrow.errors import UsageError
from hpogrow.storage import dashboard_command, open_storage

TrialState = optuna.trial.TrialState


def _fmt(value, spec: str = ".4f") -> str:
    return "—" if value is None else format(value, spec)


def _speedup(value) -> str:
    return "not reached" if value is None else f"{value:.2f}×"


def load_studies(storage_url: str, study: str) -> tuple[optuna.Study, list[optuna.Study]]:
    """The base study ``{study}/base`` and its target studies ``{study}/target-w*``."""
    if storage_url.startswith("sqlite:///") and not Path(storage_url[len("sqlite:///"):]).exists():
        raise UsageError(f"no storage at {storage_url}; run 'hpogrow search' first or pass --storage/--workdir")
    storage = open_storage(storage_url)
    names = [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
    if f"{study}/base" not in names:
        known = sorted({n.rsplit("/", 1)[0] for n in names if "/" in n})
        raise UsageError(f"no study {study!r} in {storage_url}; known: {', '.join(known) or 'none'} (run 'hpogrow search' first)")
    targets = [optuna.load_study(study_name=n, storage=storage) for n in sorted(names) if n.startswith(f"{study}/target-w")]
    return optuna.load_study(study_name=f"{study}/base", storage=storage), targets


def trial_line(trial: optuna.trial.FrozenTrial) -> str:
    """One line about a finished trial, printed as the search goes."""
    params = f"lr {trial.params['learning_rate']:.2e}, batch {trial.params['batch_size']}"
    tokens = f"{trial.user_attrs.get('fidelity_reached', 0):,} tokens"
    if trial.state == TrialState.FAIL:
        return f"trial {trial.number} FAIL after {tokens} ({params}): {trial.user_attrs.get('fail_reason', '')}"
    mfu = f", MFU {trial.user_attrs['mfu']:.1%}" if "mfu" in trial.user_attrs else ""
    return f"trial {trial.number} {trial.state.name} at {tokens}, val loss {trial.value:.4f} ({params}{mfu})"


def base_table(study: optuna.Study, top: int = 5) -> Table:
    trials = study.get_trials(deepcopy=False)
    counts = {state.name: sum(t.state == state for t in trials) for state in TrialState}
    summary = ", ".join(f"{n} {name.lower()}" for name, n in counts.items() if n)
    table = Table(title=f"{study.study_name}: {len(trials)} trials ({summary}); top {top} by validation loss")
    for column in ("trial", "state", "learning rate", "batch", "tokens", "val loss"):
        table.add_column(column, justify="right")
    ranked = sorted((t for t in trials if t.value is not None), key=lambda t: (t.state != TrialState.COMPLETE, t.value))
    for trial in ranked[:top]:
        table.add_row(str(trial.number), trial.state.name, f"{trial.params['learning_rate']:.2e}",
                      str(trial.params["batch_size"]), f"{trial.user_attrs.get('fidelity_reached', 0):,}", f"{trial.value:.4f}")
    return table


def target_tables(study: optuna.Study) -> list[Table]:
    runs = {t.user_attrs.get("role"): t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))}
    warm, scratch = runs.get("warmstart"), runs.get("scratch")
    if warm is None or scratch is None:
        return [Table(title=f"{study.study_name}: warmstart or scratch run not finished yet")]
    attrs = warm.user_attrs
    growth = Table(title="growth", show_header=False)
    growth.add_row("grown from", str(attrs.get("grown_from")))
    stages = attrs.get("stage_widths") or [attrs.get("width")]
    growth.add_row("shape", f"width {' → '.join(map(str, stages))}" + (f", depth {attrs['depth']}" if attrs.get("depth") else "")
                   + f" (×{attrs.get('width_ratio')} width, ×{attrs.get('grow_factor')} parameters = growth factor g)")
    from hpogrow.growth import uses_shrink  # here: the operators bring torch, which the report needs nowhere else

    operator = attrs.get("grow_op", "szp")
    growth.add_row("operator", f"{operator}" + (f", λ = {attrs.get('shrink')}, perturbation = μP init" if uses_shrink(operator) else "")
                   + (", Adam moments carried" if attrs.get("carry_optimizer") else ", fresh optimizer"))
    growth.add_row("hyperparameters", f"lr {warm.params['learning_rate']:.2e}, batch {warm.params['batch_size']} (μTransfer)")
    losses = Table(title=f"{study.study_name}: warmstart vs scratch (same width, tokens and hyperparameters)")
    for column in ("run", "trial", "width", "parameters", "tokens", "initial val loss", "final val loss"):
        losses.add_column(column, justify="right")
    stage_runs = sorted((t for role, t in runs.items() if role and role.startswith("stage ")), key=lambda t: t.user_attrs["stage"])
    for trial in (*stage_runs, warm, scratch):
        run = trial.user_attrs
        losses.add_row(run["role"], str(trial.number), str(run["width"]), f"{run['n_params']:,}", f"{run['tokens']:,}",
                       _fmt(run.get("initial_loss")), _fmt(trial.value))
    speed = Table(title="speedup of warmstart over scratch (to reach scratch's final loss)")
    for column in ("measure", "without base cost", "with base cost"):
        speed.add_column(column, justify="right")
    speed.add_row("tokens", _speedup(attrs.get("speedup_tokens")), _speedup(attrs.get("speedup_tokens_with_base")))
    speed.add_row("FLOPs (6·N·D)", _speedup(attrs.get("speedup_flops")), _speedup(attrs.get("speedup_flops_with_base")))
    needed = attrs.get("warmstart_tokens_to_match")
    speed.caption = (f"warmstart reached {attrs.get('scratch_final_loss', 0):.4f} after "
                     f"{'—' if needed is None else f'{needed:,.0f}'} of {attrs.get('scratch_tokens', 0):,} tokens; "
                     f"base model{' and earlier stages' if stage_runs else ''}: {attrs.get('base_tokens', 0):,} tokens")
    return [growth, losses, speed]


def print_report(storage_url: str, study: str, workdir: str | Path, console: Console | None = None) -> None:
    """Print the base study's best trials, the growth, warmstart vs scratch and the speedups."""
    console = console or Console()
    base, targets = load_studies(storage_url, study)
    console.print(base_table(base))
    for target in targets:
        for table in target_tables(target):
            console.print(table)
        plot = target.user_attrs.get("plot")
        if plot:
            console.print(f"loss curves: {plot}")
    console.print(f"inspect: [bold]{dashboard_command(storage_url, Path(workdir) / 'artifacts')}[/bold]")


def plot_curves(base: optuna.trial.FrozenTrial, warmstart: optuna.trial.FrozenTrial,
                scratch: optuna.trial.FrozenTrial, path: Path) -> Path:
    """Validation loss against tokens: the base winner (before 0), then warmstart and scratch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.2))
    base_curve = sorted(base.intermediate_values.items())
    base_tokens = base_curve[-1][0]
    axis.plot([t - base_tokens for t, _ in base_curve], [v for _, v in base_curve], color="grey",
              label=f"base w{base.user_attrs['width']} (trial {base.number})")
    for trial, color in ((scratch, "tab:blue"), (warmstart, "tab:orange")):
        curve = sorted(trial.intermediate_values.items())
        axis.plot([t for t, _ in curve], [v for _, v in curve], marker=".", color=color,
                  label=f"{trial.user_attrs['role']} w{trial.user_attrs['width']}")
    axis.axhline(scratch.value, color="tab:blue", linestyle=":", linewidth=1)
    axis.axvline(0, color="black", linewidth=0.5)
    axis.set_xlabel("tokens (the base model's own training before 0)")
    axis.set_ylabel("validation loss")
    axis.set_title("warmstarted μP vs μP from scratch")
    axis.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def attach_plot(study: optuna.Study, path: Path, artifact_dir: Path) -> None:
    """Record the plot's path on the study and upload it as an Optuna artifact."""
    from optuna.artifacts import FileSystemArtifactStore, upload_artifact

    artifact_dir.mkdir(parents=True, exist_ok=True)
    upload_artifact(artifact_store=FileSystemArtifactStore(str(artifact_dir)), file_path=str(path),
                    study_or_trial=study, mimetype="image/png")
    study.set_user_attr("plot", str(path))


