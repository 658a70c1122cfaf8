"""Tables and plots of a study, as printed at the end of ``hpogrow search`` and by ``hpogrow report``."""

from __future__ import annotations

from pathlib import Path

import optuna
from rich.console import Console
from rich.table import Table

from hpogrow import record
from hpogrow.errors import UsageError
from hpogrow.record.run import REPLICATE, SCRATCH, WARMSTART, RunRecord, SpeedupRecord
from hpogrow.storage import dashboard_command, open_storage

TrialState = optuna.trial.TrialState


def _fmt(value, spec: str = ".4f") -> str:
    return "—" if value is None else format(value, spec)


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
    run = RunRecord.of(trial)
    tokens = f"{run.fidelity_reached:,} tokens"
    if trial.state == TrialState.FAIL:
        return f"trial {trial.number} FAIL after {tokens} ({params}): {run.fail_reason or ''}"
    mfu = f", MFU {run.facts.mfu:.1%}" if run.facts and run.facts.mfu is not None else ""
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
                      str(trial.params["batch_size"]), f"{RunRecord.of(trial).fidelity_reached:,}", f"{trial.value:.4f}")
    return table


def _interval(value: float | None, interval) -> str:
    if value is None:
        return "—"
    return f"{value:.2f}×" + (f" ({interval[0]:.2f}–{interval[1]:.2f})" if interval else " (no interval)")


def target_runs(study: optuna.Study) -> tuple[list[optuna.trial.FrozenTrial], list[optuna.trial.FrozenTrial],
                                              list[optuna.trial.FrozenTrial], list[optuna.trial.FrozenTrial]]:
    """The COMPLETE stage, warmstart, scratch and replicate-base trials of a target study, by pair
    (replicate bases by base)."""
    runs = [(trial, RunRecord.of(trial)) for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    runs.sort(key=lambda pair: (pair[1].pair, pair[1].base_replicate or 0, pair[1].stage or 0, pair[0].number))
    return ([t for t, run in runs if run.stage is not None], [t for t, run in runs if run.role == WARMSTART],
            [t for t, run in runs if run.role == SCRATCH], [t for t, run in runs if run.role == REPLICATE])


def target_summary(study: optuna.Study) -> dict[str, list[tuple[str, ...]]] | None:
    """What a target study says, as rows: ``growth``, ``runs`` (one per run, the first row the
    header), ``speedup`` and ``matches`` (tokens-to-match at several loss targets; header first)
    and ``notes``. Rendered as tables by the CLI and as Markdown in the dashboard's note. ``None``
    while no warmstart/scratch pair is finished."""
    stages, warmstarts, scratches, replicates = target_runs(study)
    if not warmstarts or not scratches:
        return None
    first = RunRecord.of(warmstarts[0])
    lineage, speedup = first.lineage, record.read_speedup(study) or first.speedup
    from hpogrow.growth import uses_shrink  # here: the operators bring torch, which the report needs nowhere else

    widths = (lineage.base_width, *lineage.stage_widths)
    asked = "" if lineage.grow_factor is None else f", asked {lineage.grow_factor:g}"
    growth = [("grown from", str(lineage.grown_from_trial or lineage.grown_from)),
              ("shape", f"width {' → '.join(map(str, widths))}"
               + (f", depth {lineage.target_depth}" if lineage.target_depth else "")
               + f" (×{lineage.width_ratio} width, ×{lineage.param_ratio} parameters = growth factor g{asked}, "
                 "counting every parameter; FLOPs count the non-embedding ones)"),
              ("operator", lineage.grow_op + (f", λ = {lineage.shrink}, perturbation = μP init"
                                              if uses_shrink(lineage.grow_op) else "")
               + (", Adam moments carried" if lineage.carry_optimizer else ", fresh optimizer")),
              ("hyperparameters", f"lr {warmstarts[0].params['learning_rate']:.2e}, batch "
                                  f"{warmstarts[0].params['batch_size']} (μTransfer)")]
    bases = _bases_line(warmstarts, replicates, speedup)
    if bases:
        growth.insert(1, ("bases", bases))
    runs = [("run", "base", "pair (seed)", "trial", "width", "parameters", "tokens", "initial val loss", "final val loss")]
    for trial in (*replicates, *stages, *warmstarts, *scratches):
        run = RunRecord.of(trial)
        seed = "—" if run.seed is None else run.seed
        runs.append((run.role, "—" if run.role == SCRATCH else str(run.base_replicate or 0),
                     f"— ({seed})" if run.role == REPLICATE else f"{run.pair} ({seed})", str(trial.number),
                     str(run.width), f"{run.n_params:,}", f"{run.tokens:,}", _fmt(run.initial_loss), _fmt(trial.value)))
    table = [("measure", "with the base's cost", "without it")]
    table.append(("FLOPs (6·N·D)", _interval(speedup.speedup_flops_with_base, speedup.speedup_flops_with_base_ci),
                  _interval(speedup.speedup_flops, speedup.speedup_flops_ci)))
    table.append(("tokens", _interval(speedup.speedup_tokens_with_base, speedup.speedup_tokens_with_base_ci),
                  _interval(speedup.speedup_tokens, speedup.speedup_tokens_ci)))
    matches = [("scratch's loss at", "loss", "tokens (warmstart's own)", "FLOPs with the base's cost", "reached")]
    for index, fraction in enumerate(speedup.speedup_match_fraction):
        matches.append((f"{fraction:.0%} of its budget", f"{speedup.speedup_match_target_loss[index]:.4f}",
                        _interval(speedup.speedup_match_tokens[index], speedup.speedup_match_tokens_ci[index]),
                        _interval(speedup.speedup_match_flops_with_base[index],
                                  speedup.speedup_match_flops_with_base_ci[index]),
                        f"{speedup.speedup_match_reached[index]} of {speedup.seeds}"))
    notes = [speedup.speedup_summary]
    if speedup.final_loss_gap is not None:
        line = f"final validation loss, warmstart − scratch: {speedup.final_loss_gap:+.4f} (mean over pairs)"
        if speedup.eval_gap_se is not None:
            line += (f"; the eval set's standard error of a pair's gap (same units scored by both) is "
                     f"{speedup.eval_gap_se:.4f}: the gap spans {speedup.gap_in_eval_se:.1f} of them")
        notes.append(line)
    full = first.facts.flops_with_attention if first.facts else None
    if first.flops and full:
        notes.append(f"FLOPs: 6·N·D (the papers' count, used for the speedups); counting attention scores too adds "
                     f"{full / first.flops - 1:.1%} to the target runs")
    if first.schedule == "wsd":
        notes.append("--schedule wsd: a run's loss drops in its decay phase, so tokens-to-match read inside scratch's "
                     "decay understate the speedup")
    notes.append(f"the base's cost: each pair counts its own base{' and earlier stages' if stages else ''} "
                 f"({lineage.base_tokens:,} tokens, {lineage.base_flops:.3g} FLOPs), what one grown model costs"
                 + (f"; the {len(replicates)} replicate base{'s' if len(replicates) > 1 else ''} "
                    f"({sum(RunRecord.of(t).flops or 0 for t in replicates):.3g} FLOPs) and the search's other base "
                    "trials are an evaluation expense, not counted" if replicates else
                    "; the search's other base trials are not counted"))
    return {"growth": growth, "runs": runs, "speedup": table, "matches": matches if len(matches) > 1 else [],
            "notes": [n for n in notes if n]}


def _bases_line(warmstarts: list[optuna.trial.FrozenTrial], replicates: list[optuna.trial.FrozenTrial],
                speedup: SpeedupRecord) -> str | None:
    """Which bases the pairs grew, and what the interval resamples (``None`` for records from before ``--bases``)."""
    if speedup.speedup_base_per_seed is None:
        return None
    grown = sorted({(RunRecord.of(t).base_replicate or 0, RunRecord.of(t).lineage.grown_from_trial) for t in warmstarts})
    seeds = {RunRecord.of(t).base_replicate: RunRecord.of(t).seed for t in replicates}
    names = ", ".join(f"{index}: {source}" + (" (the winner)" if index == 0 else f" (retrained, seed {seeds.get(index, '?')})")
                      for index, source in grown)
    if speedup.speedup_bases < 2:
        return f"{names}; every pair grew it, so the interval covers seeds and data, not the base"
    return (f"{names}; pair k grew base k mod {speedup.speedup_bases}, and the interval resamples bases "
            f"(t on their mean log speedups, {speedup.speedup_bases - 1} degree"
            f"{'' if speedup.speedup_bases == 2 else 's'} of freedom)")


def target_tables(study: optuna.Study) -> list[Table]:
    summary = target_summary(study)
    if summary is None:
        return [Table(title=f"{study.study_name}: warmstart or scratch run not finished yet")]
    growth = Table(title="growth", show_header=False)
    for row in summary["growth"]:
        growth.add_row(*row)
    runs = Table(title=f"{study.study_name}: warmstart vs scratch (same width, tokens and hyperparameters per pair)")
    speed = Table(title=f"speedup of warmstart over scratch ({_SPEEDUP_CAPTION})")
    matches = Table(title=f"tokens-to-match at several loss targets ({_MATCH_CAPTION})")
    tables = [(runs, summary["runs"]), (speed, summary["speedup"])] + ([(matches, summary["matches"])]
                                                                      if summary["matches"] else [])
    for table, rows in tables:
        for column in rows[0]:
            table.add_column(column, justify="right")
        for row in rows[1:]:
            table.add_row(*row)
    notes = Table(show_header=False, box=None)
    for note in summary["notes"]:
        notes.add_row(note)
    return [growth, *(table for table, _ in tables), notes]


_SPEEDUP_CAPTION = "to reach scratch's final loss; geometric mean, bases weighted alike, 95% CI"
_MATCH_CAPTION = ("scratch's tokens to its smoothed loss at a share of its budget over the warmstart's; geometric "
                  "mean, bases weighted alike, 95% CI; reached: pairs that got there")


def dashboard_note(study: optuna.Study) -> str | None:
    """The target study's optuna-dashboard note: the same tables as Markdown."""
    summary = target_summary(study)
    if summary is None:
        return None

    def markdown(rows: list[tuple[str, ...]]) -> str:
        lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows[1:]])

    growth = "\n".join(f"- **{label}**: {text}" for label, text in summary["growth"])
    notes = "\n".join(f"- {note}" for note in summary["notes"])
    matches = (f"### Tokens-to-match at several loss targets ({_MATCH_CAPTION})\n\n{markdown(summary['matches'])}\n\n"
               if summary["matches"] else "")
    return (f"## {study.study_name}: warmstarted μP against μP from scratch\n\n{growth}\n\n"
            f"### Speedup ({_SPEEDUP_CAPTION})\n\n"
            f"{markdown(summary['speedup'])}\n\n{notes}\n\n{matches}### Runs\n\n{markdown(summary['runs'])}\n\n"
            "The loss curves are this study's artifact (PNG).")


def write_dashboard_notes(study: optuna.Study) -> None:
    """optuna-dashboard notes: the study's summary, and each target trial's role."""
    from optuna_dashboard import save_note

    note = dashboard_note(study)
    if note is not None:
        save_note(study, note)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        run = RunRecord.of(trial)
        grown_from = run.lineage and (run.lineage.grown_from_trial or run.lineage.grown_from)
        text = {WARMSTART: f"the grown base trial {grown_from} trained on",
                SCRATCH: "μP from scratch at the same width, on the same tokens as the warmstart of its pair",
                REPLICATE: f"the search's winning configuration ({run.base_study}#{run.base_trial}) retrained at the "
                           "base width with another seed, for the pairs to grow (base "
                           f"{run.base_replicate}): the speedup's interval resamples bases"}.get(
                    run.role, "an intermediate stage of successive warmstarting")
        speed = (f"\n\nThis pair's speedup in tokens: {run.pair_speedup_tokens:.2f}× ({run.pair_censoring})"
                 if run.pair_speedup_tokens is not None else "")
        seed = "—" if run.seed is None else run.seed
        which = f"base {run.base_replicate}" if run.role == REPLICATE else f"pair {run.pair}"
        save_note(optuna.Trial(study, trial._trial_id), f"## {run.role} ({which}, seed {seed})\n\n{text}.{speed}")


def print_report(storage_url: str, study: str, workdir: str | Path, console: Console | None = None) -> None:
    """Print the base study's best trials, the growth, warmstart vs scratch and the speedups."""
    console = console or Console()
    base, targets = load_studies(storage_url, study)
    console.print(base_table(base))
    for target in targets:
        for table in target_tables(target):
            console.print(table)
        plot = record.read_plot(target)
        if plot:
            console.print(f"loss curves: {_plot_path(plot, workdir)}")
    artifacts = Path(workdir).resolve() / "artifacts"
    console.print(f"inspect: [bold]{dashboard_command(_absolute_url(storage_url), artifacts)}[/bold]")


def _plot_path(plot: str, workdir: str | Path) -> Path:
    """A recorded plot's absolute path. Plots are recorded absolute; a relative one (recorded
    before that, relative to wherever the search ran) is looked up in ``workdir/plots``."""
    path = Path(plot)
    return path if path.is_absolute() else Path(workdir).resolve() / "plots" / path.name


def _absolute_url(storage_url: str) -> str:
    """``storage_url`` with a relative SQLite or journal file made absolute (other URLs unchanged)."""
    for prefix in ("sqlite:///", "journal:"):
        if storage_url.startswith(prefix) and not Path(storage_url[len(prefix):]).is_absolute():
            return prefix + str(Path(storage_url[len(prefix):]).resolve())
    return storage_url


def plot_curves(base: optuna.trial.FrozenTrial, warmstarts: list[optuna.trial.FrozenTrial],
                scratches: list[optuna.trial.FrozenTrial], path: Path, speedup: SpeedupRecord | None = None,
                replicates: list[optuna.trial.FrozenTrial] = ()) -> Path:
    """Validation loss against tokens: the base winner and its replicate bases (before 0), then
    every pair's warmstart and scratch runs; the speedup and its interval in the title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.2))
    base_curve = sorted(base.intermediate_values.items())
    base_tokens = base_curve[-1][0]
    axis.plot([t - base_tokens for t, _ in base_curve], [v for _, v in base_curve], color="grey",
              label=f"base w{RunRecord.of(base).width} (trial {base.number})")
    for index, replicate in enumerate(replicates):
        curve = sorted(replicate.intermediate_values.items())
        axis.plot([t - base_tokens for t, _ in curve], [v for _, v in curve], color="grey", linestyle="--",
                  label=f"replicate base{'s' if len(replicates) > 1 else ''} (other seeds)" if index == 0 else None)
    for trials, color in ((scratches, "tab:blue"), (warmstarts, "tab:orange")):
        for index, trial in enumerate(trials):
            curve = sorted(trial.intermediate_values.items())
            run = RunRecord.of(trial)
            label = f"{run.role} w{run.width}" + (
                f" ({len(trials)} seeds)" if len(trials) > 1 else "")
            axis.plot([t for t, _ in curve], [v for _, v in curve], marker=".", color=color, alpha=0.9 if index == 0 else 0.5,
                      label=label if index == 0 else None)
            if run.role == SCRATCH:
                axis.axhline(trial.value, color="tab:blue", linestyle=":", linewidth=1)
    axis.axvline(0, color="black", linewidth=0.5)
    axis.set_xlabel("tokens (the base model's own training before 0)")
    axis.set_ylabel("validation loss")
    title = "warmstarted μP vs μP from scratch"
    if speedup is not None:
        title += (f"\nspeedup in FLOPs with the base's cost "
                  f"{_interval(speedup.speedup_flops_with_base, speedup.speedup_flops_with_base_ci)}, "
                  f"in tokens without it {_interval(speedup.speedup_tokens, speedup.speedup_tokens_ci)}")
    axis.set_title(title, fontsize=9)
    axis.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def attach_plot(study: optuna.Study, path: Path, artifact_dir: Path) -> None:
    """Record the plot's absolute path on the study and upload it as an Optuna artifact."""
    from optuna.artifacts import FileSystemArtifactStore, upload_artifact

    artifact_dir.mkdir(parents=True, exist_ok=True)
    upload_artifact(artifact_store=FileSystemArtifactStore(str(artifact_dir)), file_path=str(path),
                    study_or_trial=study, mimetype="image/png")
    record.write_plot(study, str(Path(path).resolve()))


