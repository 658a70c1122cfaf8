"""``hpogrow`` command line: search, grow, train, report.

Heavy libraries (torch, optuna, ray) are imported inside the commands, so ``hpogrow --help``
stays fast. Usage errors print one line and exit with status 2, before anything is written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line instead of usage + message
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _growth_factor(text: str) -> float | str:
    """A number, or ``auto`` (the stored growth advice)."""
    return text if text == "auto" else float(text)


def _add_task_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("task and model")
    group.add_argument("--task", choices=("lm", "mlp"), default="lm",
                       help="lm: GPT on text, token files or the synthetic language (default); mlp: residual MLP on "
                            "the Fourier target")
    group.add_argument("--depth", type=_positive_int, default=2, help="transformer blocks / residual blocks (default 2)")
    group.add_argument("--head-size", type=_positive_int, default=32, help="attention head size; widths are multiples of it (default 32)")
    group.add_argument("--seq-len", type=_positive_int, default=128, help="context length of the LM (default 128)")
    data = parser.add_argument_group("data (--task lm)")
    data.add_argument("--data", help="synthetic or synthetic:SEED (the built-in synthetic language: unbounded, known "
                                     "entropy floor), a folder with nanoGPT's train.bin/val.bin, a folder of text files, "
                                     "or a text file (default: the CPython standard library source, no download)")
    data.add_argument("--vocab-size", type=_positive_int,
                      help="vocabulary of train.bin/val.bin without a meta.pkl, e.g. 50257 for GPT-2 BPE (may also pad one)")
    data.add_argument("--dtype", choices=("uint16", "uint32"), default="uint16",
                      help="integer type of train.bin/val.bin (default uint16, as nanoGPT writes; uint32 for vocabularies "
                           "above 65,536)")
    data.add_argument("--allow-repeat", action="store_true",
                      help="run even if the training tokens would be read more than once (refused by default); "
                           "each run records its passes over the data")


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("training")
    group.add_argument("--schedule", choices=("constant", "wsd"), default="constant", help="learning-rate schedule (default constant)")
    group.add_argument("--evaluations", type=_positive_int, default=16, help="held-out evaluations per run (default 16)")
    group.add_argument("--seed", type=int, default=0, help="seed of sampler and initialisations (default 0)")
    group.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N")
    group.add_argument("--precision", choices=("fp32", "bf16"), default="fp32", help="bf16 uses autocast (default fp32)")
    group.add_argument("--compile", action="store_true", help="torch.compile the model (pays off on a GPU for long runs)")
    group.add_argument("--workdir", default="studies", help="home of storage, checkpoints, plots, artifacts (default studies/)")


def _add_growth_options(parser: argparse.ArgumentParser, factor_flag: str) -> None:
    group = parser.add_argument_group("growth")
    search = factor_flag == "--grow-factor"
    group.add_argument(factor_flag, dest="grow_factor" if search else "factor", type=_growth_factor if search else float,
                       default=2.0, help="growth factor g = target/base parameters (default 2)"
                       + ("; auto: the g recommended by `hpogrow advise` for the task in this storage" if search else ""))
    group.add_argument("--grow-op", default="szp",
                       help="szp (default), zero-pad, clone, stack, zero-block, or WIDTH+DEPTH e.g. szp+zero-block")
    group.add_argument("--target-width", "--grow-width", dest="target_width", type=_positive_int,
                       help="target width (overrides the factor for width growth)")
    group.add_argument("--grow-depth", type=_positive_int, help="target depth for depth operators (overrides the factor)")
    group.add_argument("--shrink", type=float, default=0.4, help="λ_shrink of szp (default 0.4; above 0.6 warns)")
    group.add_argument("--noise-scale", type=float, help="perturbation scale: μP init × this (default 1 for szp, 0.1 for clone)")
    group.add_argument("--carry-optimizer", action="store_true",
                       help="carry Adam moments through growth, zero-padded (experiment; default: fresh optimizer)")


def _add_ray_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("executor (Ray Tune)")
    group.add_argument("--executor", choices=("local", "ray"), default="ray",
                       help="ray: Ray Tune trials under --scheduler (default); local: in process, one at a time, "
                            "stopped by --pruner, no Ray start-up")
    group.add_argument("--scheduler", choices=("asha", "hyperband", "none"),
                       help="Ray Tune scheduler, fidelity in tokens (default asha)")
    group.add_argument("--reduction-factor", type=int, help="ratio between rungs (default 2: 2.5 → 5 → 10 → 20 tokens/parameter at 20)")
    group.add_argument("--cpus-per-trial", type=float, help="CPUs per Ray trial (default 1)")
    group.add_argument("--gpus-per-trial", type=float, help="GPUs per Ray trial; 0.5 puts two trials on a GPU (default 1 with CUDA, else 0)")
    group.add_argument("--max-concurrent", type=_positive_int, help="Ray trials at once (default: what the resources fit)")
    group.add_argument("--ray-address", help="join a running Ray cluster: auto or HOST:PORT (default: start a local one)")
    group.add_argument("--ray-storage", help="folder for Ray Tune's results and rung checkpoints; shared "
                                             "storage on a multi-node cluster (default WORKDIR/ray)")
    group.add_argument("--verbose", action="store_true", help="show Ray's own console output")


_RAY_FLAGS = ("scheduler", "reduction_factor", "cpus_per_trial", "gpus_per_trial", "max_concurrent", "ray_address",
              "ray_storage")


def _make_task(args: argparse.Namespace):
    from hpogrow.tasks import FourierTask, LanguageTask

    if args.task == "mlp":
        if args.data is not None or args.vocab_size is not None or args.dtype != "uint16":
            raise _usage("--data, --vocab-size and --dtype apply to --task lm; the mlp task generates its data from --seed")
        return FourierTask(depth=args.depth, seed=args.seed)
    return LanguageTask(depth=args.depth, head_size=args.head_size, seq_len=args.seq_len, data=args.data,
                        vocab_size=args.vocab_size, dtype=args.dtype)


def _search(args: argparse.Namespace) -> int:
    from hpogrow.search import SearchConfig
    from hpogrow.search.pipeline import run_pipeline

    given = [name for name in _RAY_FLAGS if getattr(args, name) is not None]
    if given and args.executor != "ray":
        raise _usage(f"--{given[0].replace('_', '-')} applies to Ray trials; drop --executor local")
    if args.pruner is not None and args.executor == "ray":
        raise _usage("--pruner applies to --executor local; Ray trials are stopped early by --scheduler")
    ray_options = {name: getattr(args, name) for name in given}
    config = SearchConfig(
        base_width=args.base_width, trials=args.trials, tokens_per_param=args.tokens_per_param,
        grow_factor=args.grow_factor, target_width=args.target_width, shrink=args.shrink, seed=args.seed, seeds=args.seeds,
        grow_op=args.grow_op, target_depth=args.grow_depth, noise_scale=args.noise_scale, stages=args.stages,
        carry_optimizer=args.carry_optimizer,
        study=args.study, storage=args.storage, workdir=args.workdir, space=args.space, pruner=args.pruner or "median",
        schedule=args.schedule, evaluations=args.evaluations, device=args.device, precision=args.precision,
        compile=args.compile, executor=args.executor, verbose=args.verbose, allow_repeat=args.allow_repeat,
        **ray_options)
    run_pipeline(_make_task(args), config)
    return 0


def _grow(args: argparse.Namespace) -> int:
    from rich.console import Console

    from hpogrow.checkpoint import read_checkpoint
    from hpogrow.growth import grow_checkpoint, parse_operators, plan_growth
    from hpogrow.tasks import task_from_spec

    source = read_checkpoint(args.checkpoint)
    width_operator, depth_operator = parse_operators(args.grow_op)
    plan = plan_growth(task_from_spec(source.config["task"]), source.width, args.factor, args.target_width,
                       args.grow_depth, grow_width=width_operator is not None, grow_depth=depth_operator is not None)
    out = Path(args.out or f"{source.path}-grown-w{plan.target_width}")
    if out.exists():
        raise _usage(f"--out {out} already exists; remove it or pass another --out")
    result = grow_checkpoint(source.path, out, factor=args.factor, target_width=args.target_width,
                             target_depth=args.grow_depth, operator=args.grow_op, shrink=args.shrink,
                             noise_scale=args.noise_scale, seed=args.seed, carry_optimizer=args.carry_optimizer)
    console = Console()
    for message in result.warnings:
        console.print(f"[yellow]warning: {message}[/yellow]")
    depth = f", depth {plan.base_depth} → {plan.target_depth}" if plan.target_depth != plan.base_depth else ""
    console.print(f"grew width {plan.base_width} → {plan.target_width}{depth} with {args.grow_op} (width ×{plan.width_ratio:.2f}, "
                  f"parameters {plan.base_params:,} → {plan.target_params:,} = ×{plan.param_ratio:.2f}): {result.path}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from rich.console import Console

    from hpogrow.checkpoint import load_model, load_optimizer_state, read_checkpoint
    from hpogrow.data.supply import task_token_supply
    from hpogrow.parametrize import build_model, check_width, count_parameters
    from hpogrow.progress import make_progress
    from hpogrow.runs import run_training
    from hpogrow.train import TrainConfig, TrainState

    if args.from_checkpoint:
        source = read_checkpoint(args.from_checkpoint)
        model, task = load_model(source)
        width, base_width, state = source.width, source.base_width, TrainState(data_position=source.state.data_position)
        defaults, lineage = source.config.get("train") or {}, {"trained_from": str(source.path), "parent": source.config.get("lineage")}
        optimizer_state = load_optimizer_state(source)  # a base's, or moments carried through growth
    else:
        if args.width is None:
            raise _usage("pass --width for a run from scratch, or --from CHECKPOINT")
        task, width = _make_task(args), args.width
        base_width = args.base_width or width
        check_width(task, width)
        check_width(task, base_width, "--base-width")
        model, state, defaults, lineage, optimizer_state = None, TrainState(), {}, None, None
    learning_rate = args.lr or defaults.get("learning_rate")
    batch_size = args.batch_size or defaults.get("batch_size")
    if learning_rate is None or batch_size is None:
        raise _usage("pass --lr and --batch-size (a checkpoint from 'hpogrow search' or 'grow' supplies them)")
    if model is None:
        model = build_model(task, width, base_width, args.seed)
    n_params = count_parameters(model).total
    tokens = args.tokens or round(args.tokens_per_param * n_params)
    config = TrainConfig(learning_rate=learning_rate, batch_size=batch_size, tokens=tokens, schedule=args.schedule,
                         evaluations=args.evaluations, seed=args.seed, device=args.device, precision=args.precision,
                         compile=args.compile)
    out = Path(args.out or Path(args.workdir) / "runs" / f"{task.name}-w{width}-lr{learning_rate:.2e}-b{batch_size}")
    if out.exists():
        raise _usage(f"--out {out} already exists; remove it or pass another --out")
    supply = task_token_supply(task, tokens, [], 0, batch_sizes=[batch_size], start=state.data_position,
                               allow_repeat=args.allow_repeat, budget_flag=("--tokens", tokens))
    console = Console()
    console.print(f"data: {supply.describe()}")
    console.print(f"training {task.name} at width {width} ({n_params:,} parameters, μP base width {base_width}) "
                  f"for {tokens:,} tokens, lr {learning_rate:.2e}, batch {batch_size}"
                  + (f", continuing data position {state.data_position:,}" if state.data_position else "")
                  + (", continuing the checkpoint's Adam moments" if optimizer_state is not None else ""))
    with make_progress(console) as progress:
        outcome = run_training(task, model, config, width=width, base_width=base_width, checkpoint=out,
                               state=state, progress=progress, description=f"train w{width}", lineage=lineage,
                               optimizer_state=optimizer_state)
    console.print(f"validation loss {outcome.evaluations[0].val_loss:.4f} → {outcome.final_loss:.4f} "
                  f"after {outcome.state.tokens_seen:,} tokens ({outcome.flops:.3g} FLOPs, "
                  f"{outcome.tokens_per_second:,.0f} tokens/s"
                  + (f", MFU {outcome.extra['mfu']:.1%}" if "mfu" in outcome.extra else "")
                  + f"); checkpoint: {outcome.checkpoint}")
    return 0


def _coordcheck(args: argparse.Namespace) -> int:
    import time

    from rich.console import Console
    from rich.progress import Progress
    import torch
    from rich.table import Table

    from hpogrow.coordcheck import BROKEN, THRESHOLD_NOTE, CoordCheckConfig, run_coordcheck, write_outputs

    config = CoordCheckConfig(widths=tuple(args.widths), base_width=args.base_width, shrinks=tuple(args.shrinks),
                              broken=tuple(args.broken), depth=args.depth, head_size=args.head_size,
                              seq_len=args.seq_len, batch_size=args.batch_size, steps=args.steps, seeds=args.seeds,
                              seed=args.seed, learning_rate=args.lr, base_steps=args.base_steps,
                              threshold=args.threshold, data=args.data)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    console = Console() if sys.stdout.isatty() else Console(width=140)  # module names stay whole in logs
    seeds = f"seeds {config.seed}–{config.seed + config.seeds - 1}"
    console.print(f"coordinate check: GPT depth {config.depth}, head size {config.head_size}, widths {list(config.widths)} "
                  f"with μP base width {config.base_width}; {config.steps} Adam steps (lr {config.learning_rate:g}, "
                  f"batch {config.batch_size}×{config.seq_len} tokens, a fresh batch each step), {seeds}.")
    console.print("measured: per module and step, the log-log slope of mean |activation| against width, minus the "
                  "slope of a μP reference (μP from scratch, same batches, other initialisation seeds); the "
                  "statistic is the largest |gap| over modules and steps, with the largest ends of their 95% "
                  "Welch intervals over seeds.")
    for name in config.broken:
        console.print(f"broken μP {name}: {BROKEN[name]}")
    started = time.perf_counter()
    configurations = 3 + len(config.broken) + len(config.shrinks)  # reference, SP, μP, …
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("base models" if config.shrinks else "coordinate data", total=configurations * config.seeds)
        result = run_coordcheck(config, on_progress=lambda name: progress.update(task, advance=1, description=name))
    seconds = time.perf_counter() - started
    if result.bases:
        console.print(f"warmstart bases: width {config.base_width}, {config.base_steps} MuAdam steps each (one per seed); "
                      "training loss " + ", ".join(f"{b.first_loss:.2f} → {b.last_loss:.2f}" for b in result.bases)
                      + "; weights moved ‖θ − θ_init‖/‖θ_init‖ = "
                      + ", ".join(f"{b.relative_change:.2f}" for b in result.bases))
    table = Table(title="largest slope gap against μP over modules and steps (+: activations grow faster with "
                        "width than under μP, −: slower)")
    table.add_column("configuration", no_wrap=True)
    table.add_column("gap [95% CI of |gap|]", no_wrap=True, min_width=21)
    table.add_column("threshold", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    table.add_column("where", no_wrap=True)
    table.add_column(f"|gap| t=1 → {config.steps}", no_wrap=True)
    styles = {"μP-like": "green", "not μP-like": "red", "undecided": "yellow"}
    for name, verdict in result.verdicts.items():
        table.add_row(name, f"{verdict.signed_gap:+.3f} [{verdict.low:.3f}, {verdict.high:.3f}]", f"{verdict.threshold:g}",
                      f"[{styles[verdict.label]}]{verdict.label}[/]", f"{verdict.module} t={verdict.step}",
                      f"{verdict.by_step[0]:.3f} → {verdict.by_step[-1]:.3f}")
    console.print(table)
    console.print(f"threshold {config.threshold:g}: {THRESHOLD_NOTE}")
    sp, mu = result.verdicts["SP"], result.verdicts["μP"]
    console.print(f"this run: μP {mu.gap:.3f}, SP {sp.gap:.3f} (separation ×{sp.gap / max(mu.gap, 1e-9):.0f})"
                  + ("" if (mu.label, sp.label) == ("μP-like", "not μP-like") else
                     "; [yellow]at these settings the threshold does not separate SP from μP: read the gaps, "
                     "not the verdicts[/]"))
    written = write_outputs(result, out)
    console.print(f"wrote {written[0]}, {written[1]} and {len(written) - 2} plots in {out} ({seconds:.0f} s)")
    return 0


def _transfercheck(args: argparse.Namespace) -> int:
    from hpogrow.transfer import TransferConfig, run_transfercheck

    config = TransferConfig(
        widths=tuple(args.widths) if args.widths else None,
        learning_rates=tuple(args.lrs) if args.lrs else None, batch_size=args.batch_size, tokens=args.tokens,
        seeds=args.seeds, seed=args.seed, tolerance=args.tolerance, study=args.study, storage=args.storage,
        workdir=args.workdir, schedule=args.schedule, evaluations=args.evaluations, device=args.device,
        precision=args.precision, compile=args.compile, threads=args.threads)
    run_transfercheck(_make_task(args), config)
    return 0


def _advise(args: argparse.Namespace) -> int:
    from hpogrow.advise import AdviseConfig, advise

    config = AdviseConfig(
        widths=tuple(args.widths) if args.widths else None, tokens=args.tokens,
        growth_factors=tuple(args.growth_factors) if args.growth_factors else None,
        pair_tokens_per_param=tuple(args.pair_tokens_per_param) if args.pair_tokens_per_param else None,
        learning_rate=args.lr, batch_size=args.batch_size, seeds=args.seeds, seed=args.seed,
        holdout_growth_factor=args.holdout_growth_factor, target_params=args.target_params,
        target_width=args.target_width, target_tokens_per_param=args.tokens_per_param, bootstrap=args.bootstrap,
        study=args.study, storage=args.storage, workdir=args.workdir, evaluations=args.evaluations,
        device=args.device, precision=args.precision, threads=args.threads)
    advise(_make_task(args), config)
    return 0


def _report(args: argparse.Namespace) -> int:
    from hpogrow.search.report import print_report
    from hpogrow.storage import default_storage_url

    print_report(args.storage or default_storage_url(args.workdir), args.study, args.workdir)
    return 0


def _usage(message: str) -> Exception:
    from hpogrow.errors import UsageError

    return UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="hpogrow", description="Tune hyperparameters on a small μP model, grow it, warmstart the big one.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    search = commands.add_parser("search", help="search at the base width, grow the winner, warmstart vs scratch",
                                 description="Optuna search of learning rate and batch size at the base width; the best "
                                             "full-budget trial is grown and trained against a μP model from scratch.")
    search.add_argument("--base-width", type=_positive_int, default=128, help="width of the search and μP base width (default 128)")
    search.add_argument("--trials", type=_positive_int, default=8, help="base trials the study should hold (default 8)")
    search.add_argument("--tokens-per-param", type=float, default=1.0,
                        help="token budget per parameter for every run (default 1: a quick CPU run; the papers use 20)")
    search.add_argument("--seeds", type=_positive_int, default=2,
                        help="warmstart/scratch pairs, each with its own seed and fresh tokens; the speedup is their "
                             "geometric mean with a 95%% interval (default 2; 1 gives no interval)")
    search.add_argument("--stages", type=_positive_int, default=1,
                        help="successive warmstarting: grow this many times by --grow-factor (default 1)")
    search.add_argument("--study", help="study name (default {task}-w{base-width}); rerunning continues it")
    search.add_argument("--storage", help="Optuna storage: sqlite:///FILE.db, an RDB URL, or journal:FILE.log "
                                          "(default sqlite:///{workdir}/hpogrow.db)")
    search.add_argument("--space", help="search-space YAML (default search_spaces/{task}.yaml)")
    search.add_argument("--pruner", choices=("median", "none"),
                        help="Optuna pruner of --executor local (default median); Ray trials are stopped by --scheduler")
    _add_growth_options(search, "--grow-factor")
    _add_ray_options(search)
    _add_task_options(search)
    _add_run_options(search)
    search.set_defaults(handler=_search)

    grow = commands.add_parser("grow", help="grow a checkpoint with shrink–zero-pad–perturb",
                               description="Write a grown checkpoint (fresh optimizer state, same μP base shapes).")
    grow.add_argument("checkpoint", help="checkpoint folder written by hpogrow")
    _add_growth_options(grow, "--factor")
    grow.add_argument("--seed", type=int, default=0, help="seed of the perturbation (default 0)")
    grow.add_argument("--out", help="output folder (default CHECKPOINT-grown-wWIDTH)")
    grow.set_defaults(handler=_grow)

    train = commands.add_parser("train", help="train one run at a width, from scratch or from a checkpoint",
                                description="Train one μP run; --from continues a (grown) checkpoint: its token stream, its "
                                            "hyperparameters unless given, and its Adam moments when it has them.")
    train.add_argument("--from", dest="from_checkpoint", help="checkpoint folder to start from (e.g. a grown one)")
    train.add_argument("--width", type=_positive_int, help="width of a run from scratch")
    train.add_argument("--base-width", type=_positive_int, help="μP base width of a run from scratch (default: --width)")
    train.add_argument("--lr", type=float, help="learning rate (default: the checkpoint's)")
    train.add_argument("--batch-size", type=_positive_int, help="batch size (default: the checkpoint's)")
    train.add_argument("--tokens", type=_positive_int, help="token budget (default: --tokens-per-param × parameters)")
    train.add_argument("--tokens-per-param", type=float, default=1.0, help="token budget per parameter (default 1)")
    train.add_argument("--out", help="checkpoint folder to write (default {workdir}/runs/...)")
    _add_task_options(train)
    _add_run_options(train)
    train.set_defaults(handler=_train)

    coordcheck = commands.add_parser(
        "coordcheck", help="coordinate check: SP, μP and warmstarted μP against μP's own width scaling",
        description="Trains SP, μP, warmstarted μP at each λ (and optional broken μP variants) at several widths "
                    "for tens of Adam steps (mup's get_coord_data) and compares, per module and step, how activation "
                    "size scales with width against a μP reference. Writes a CSV and one PNG per configuration.")
    coordcheck.add_argument("--widths", type=_positive_int, nargs="+", default=[64, 128, 256, 512],
                            help="three or more increasing widths, all above --base-width (default 64 128 256 512)")
    coordcheck.add_argument("--base-width", type=_positive_int, default=32,
                            help="μP base width and width of the warmstart base model (default 32)")
    coordcheck.add_argument("--shrinks", type=float, nargs="*", default=[0.0, 0.2, 0.4, 0.6, 0.8, 1.0],
                            help="λ of the warmstarted configurations; none to skip them (default 0 0.2 … 1.0)")
    coordcheck.add_argument("--broken", nargs="*", default=[], choices=("torch-adam", "readout-no-1/width"),
                            help="deliberately broken μP variants to include (default none)")
    coordcheck.add_argument("--steps", type=_positive_int, default=20, help="Adam steps per model (default 20)")
    coordcheck.add_argument("--seeds", type=_positive_int, default=3, help="seeds per configuration (default 3)")
    coordcheck.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    coordcheck.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate (default 0.003)")
    coordcheck.add_argument("--base-steps", type=_positive_int, default=300,
                            help="training steps of the warmstart base model (default 300)")
    coordcheck.add_argument("--threshold", type=float, default=0.6,
                            help="largest slope gap of a μP-like configuration (default 0.6, derived in the README)")
    coordcheck.add_argument("--depth", type=_positive_int, default=2, help="transformer blocks (default 2)")
    coordcheck.add_argument("--head-size", type=_positive_int, default=32, help="head size (default 32)")
    coordcheck.add_argument("--seq-len", type=_positive_int, default=32, help="context length (default 32)")
    coordcheck.add_argument("--batch-size", type=_positive_int, default=8, help="sequences per step (default 8)")
    coordcheck.add_argument("--threads", type=_positive_int, default=1,
                            help="torch intra-op threads (default 1: on a busy 2-core machine two threads made "
                                 "each step 8-100x slower)")
    coordcheck.add_argument("--data", help="corpus (default: the CPython standard library source)")
    coordcheck.add_argument("--out", default="studies/coordcheck", help="output folder (default studies/coordcheck)")
    coordcheck.set_defaults(handler=_coordcheck)

    transfercheck = commands.add_parser(
        "transfercheck", help="μTransfer check: does the base width's best learning rate stay best at larger widths?",
        description="Learning-rate sweeps at the base width and larger widths, in μP and standard parameterization "
                    "(SP), on equal tokens; final loss against learning rate (PNG), and a verdict: in μP the optimum "
                    "should stay within --tolerance grid steps across widths, in SP it moves. Recorded as the study "
                    "{task}-transfer (one trial per run, role=transfer); a rerun reuses finished runs.")
    transfercheck.add_argument("--widths", type=_positive_int, nargs="+",
                               help="increasing widths, the μP base first (default mlp: 16 32 64 128 256; lm: 32 64 128)")
    transfercheck.add_argument("--lrs", type=float, nargs="+",
                               help="learning rates, evenly spaced in log (default mlp 2^-11 … 2^-4, lm 2^-9 … 2^-4; step ×2)")
    transfercheck.add_argument("--batch-size", type=_positive_int, help="batch size of every run (default mlp 64, lm 16)")
    transfercheck.add_argument("--tokens", type=_positive_int,
                               help="token budget of every run, equal at every width (default mlp 38,400; lm 131,072)")
    transfercheck.add_argument("--seeds", type=_positive_int,
                               help="initialisation seeds per width and learning rate, from --seed on (default mlp 3, lm 1)")
    transfercheck.add_argument("--tolerance", type=int, default=1,
                               help="grid steps the optimum may move and still count as transferred (default 1)")
    transfercheck.add_argument("--threads", type=_positive_int, default=1,
                               help="CPU threads per run (default 1: the models are small, and on a busy machine "
                                    "more threads per run were 10-40x slower)")
    transfercheck.add_argument("--study", help="study name (default {task}-transfer); rerunning reuses its runs")
    transfercheck.add_argument("--storage", help="Optuna storage URL (default sqlite:///{workdir}/hpogrow.db)")
    _add_task_options(transfercheck)
    _add_run_options(transfercheck)
    transfercheck.set_defaults(handler=_transfercheck)

    advise = commands.add_parser(
        "advise", help="growth advice: fitted scaling laws say whether to grow, by how much, and what it saves",
        description="Runs (or reuses) a ladder of cheap runs: μP from scratch at several widths, and warmstarted "
                    "from the smallest width grown by several g against scratch at several tokens/param. Fits "
                    "L(N, D) = E + A/N^α + B/D^β (Hoffmann et al.'s approach 3) and a model of warmstart's gain, "
                    "checks both out of sample, and predicts for --target-params/--target-width at "
                    "--tokens-per-param: scratch's loss, each g's speedup counting the base, the recommended g and "
                    "the largest g beyond which scratch is cheaper. Recorded as the study {task}-advice (attribute "
                    "advice, read by search --grow-factor auto).")
    advise.add_argument("--target-params", type=_positive_int, help="parameter count to advise for")
    advise.add_argument("--target-width", type=_positive_int,
                        help="width to advise for (default 8 × the base width when no --target-params)")
    advise.add_argument("--tokens-per-param", type=float, default=20.0,
                        help="budget of the advised run in tokens per parameter (default 20)")
    advise.add_argument("--widths", type=_positive_int, nargs="+",
                        help="scratch ladder widths, the base first, the largest held out (default mlp 16 24 32 48 64; "
                             "lm 64 96 128 192)")
    advise.add_argument("--tokens", type=_positive_int, help="budget of each scratch ladder run (default mlp 76,800)")
    advise.add_argument("--growth-factors", type=float, nargs="+",
                        help="g of the warmstart/scratch pairs, at least three (default mlp 2 4 8; lm 2 3.4 7.2)")
    advise.add_argument("--pair-tokens-per-param", type=float, nargs="+",
                        help="budgets of the pairs in tokens per parameter (default mlp 5 20; lm 0.5 2)")
    advise.add_argument("--holdout-growth-factor", type=float, help="g left out of the gain model's check (default the largest)")
    advise.add_argument("--lr", type=float, help="learning rate of every run (default mlp 2^-7, lm 2^-5)")
    advise.add_argument("--batch-size", type=_positive_int, help="batch size of every run (default mlp 64, lm 16)")
    advise.add_argument("--seeds", type=_positive_int, help="seeds per pair configuration (default mlp 3, lm 1)")
    advise.add_argument("--bootstrap", type=_positive_int, default=100, help="bootstrap resamples (default 100)")
    advise.add_argument("--threads", type=_positive_int, default=1, help="CPU threads per run (default 1)")
    advise.add_argument("--study", help="study name (default {task}-advice); rerunning reuses its runs")
    advise.add_argument("--storage", help="Optuna storage URL (default sqlite:///{workdir}/hpogrow.db)")
    _add_task_options(advise)
    _add_run_options(advise)
    advise.set_defaults(handler=_advise)

    report = commands.add_parser("report", help="print a study's tables", description="Tables of a study written by hpogrow search.")
    report.add_argument("--study", default="lm-w128", help="study name (default lm-w128)")
    report.add_argument("--storage", help="Optuna storage URL (default sqlite:///{workdir}/hpogrow.db)")
    report.add_argument("--workdir", default="studies", help="hpogrow work folder (default studies/)")
    report.set_defaults(handler=_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from hpogrow.errors import PipelineError, TrainingDiverged, UsageError

    if args.command in ("search", "report", "transfercheck", "advise"):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)  # hpogrow prints its own tables
    try:
        return args.handler(args)
    except UsageError as error:
        print(f"hpogrow {args.command}: error: {error}", file=sys.stderr)
        return 2
    except (PipelineError, TrainingDiverged) as error:
        print(f"hpogrow {args.command}: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"hpogrow {args.command}: interrupted", file=sys.stderr)
        return 130
