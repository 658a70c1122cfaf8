"""``hpogrow train``: one μP run, from scratch or on from a (grown) checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from hpogrow.checkpoint import load_model, load_optimizer_state, read_checkpoint
from hpogrow.data.supply import task_token_supply
from hpogrow.errors import UsageError
from hpogrow.options import flag
from hpogrow.parametrize import build_model, check_width, count_parameters
from hpogrow.cli.progress import RichDisplay
from hpogrow.progress import run_bar
from hpogrow.runs import run_training
from hpogrow.train import TrainConfig, TrainState

if TYPE_CHECKING:
    from hpogrow.cli.commands import TrainCommand


def train(command: TrainCommand) -> int:
    """Train the run ``command`` describes and print what it did."""
    # 1. the model, its task and where it starts: a checkpoint, or a fresh μP model
    if command.from_checkpoint:
        source = read_checkpoint(command.from_checkpoint)
        model, task = load_model(source)
        width, base_width, state = source.width, source.base_width, TrainState(data_position=source.state.data_position)
        defaults, lineage = source.config.get("train") or {}, {"trained_from": str(source.path), "parent": source.config.get("lineage")}
        optimizer_state = load_optimizer_state(source)  # a base's, or moments carried through growth
    else:
        task, width = command.build_task(command.seed), command.width
        base_width = command.base_width or width
        check_width(task, width)
        check_width(task, base_width, flag("base_width"))
        model, state, defaults, lineage, optimizer_state = None, TrainState(), {}, None, None
    # 2. hyperparameters and budget: the flags, else the checkpoint's
    learning_rate = command.learning_rate or defaults.get("learning_rate")
    batch_size = command.batch_size or defaults.get("batch_size")
    if learning_rate is None or batch_size is None:
        raise UsageError(f"pass {flag('learning_rate')} and {flag('batch_size')} (a checkpoint from 'hpogrow search' "
                         "or 'grow' supplies them)")
    if model is None:
        model = build_model(task, width, base_width, command.seed)
    n_params = count_parameters(model).total
    tokens = command.tokens or round(command.tokens_per_param * n_params)
    config = TrainConfig(learning_rate=learning_rate, batch_size=batch_size, tokens=tokens, schedule=command.schedule,
                         evaluations=command.evaluations, seed=command.seed, device=command.device,
                         precision=command.precision, compile=command.compile)
    out = Path(command.out or Path(command.workdir) / "runs" / f"{task.name}-w{width}-lr{learning_rate:.2e}-b{batch_size}")
    if out.exists():
        raise UsageError(f"{flag('out')} {out} already exists; remove it or pass another {flag('out')}")
    supply = task_token_supply(task, tokens, [], 0, batch_sizes=[batch_size], start=state.data_position,
                               allow_repeat=command.allow_repeat, budget_flag=(flag("tokens"), tokens))
    # 3. train, checkpoint, say what happened
    console = Console()
    console.print(f"data: {supply.describe()}")
    console.print(f"training {task.name} at width {width} ({n_params:,} parameters, μP base width {base_width}) "
                  f"for {tokens:,} tokens, lr {learning_rate:.2e}, batch {batch_size}"
                  + (f", continuing data position {state.data_position:,}" if state.data_position else "")
                  + (", continuing the checkpoint's Adam moments" if optimizer_state is not None else ""))
    with RichDisplay(console) as display, run_bar(display, f"train w{width}", tokens) as on_tokens:
        outcome = run_training(task, model, config, width=width, base_width=base_width, checkpoint=out,
                               state=state, on_tokens=on_tokens, lineage=lineage, optimizer_state=optimizer_state)
    console.print(f"validation loss {outcome.evaluations[0].val_loss:.4f} → {outcome.final_loss:.4f} "
                  f"after {outcome.state.tokens_seen:,} tokens ({outcome.flops:.3g} FLOPs, "
                  f"{outcome.tokens_per_second:,.0f} tokens/s"
                  + (f", MFU {outcome.extra['mfu']:.1%}" if "mfu" in outcome.extra else "")
                  + f"); checkpoint: {outcome.checkpoint}")
    return 0
