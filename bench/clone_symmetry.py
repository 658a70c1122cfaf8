"""``clone``'s perturbation scale: how far the copied units drift apart, and what it costs at step 0.

``clone`` duplicates units; duplicated units get identical gradients, so without a perturbation
they stay equal forever and the added width is never used. For each perturbation scale ``s``
(the target's μP init × ``s`` added to the copy) and seed, a base model is trained, cloned to
twice its width and the clone trained on the following tokens. Reported:

- ``step-0 loss vs base``: the clone's validation loss before training relative to the base's
  (0 when the function is preserved; the perturbation's price),
- ``copies apart``: for every grown weight, ``‖W[j] − W[j + d_b]‖ / ‖W[j]‖`` over the copied rows
  (unit ``j`` and its copy), the *smallest* over weights (0: some copies are still tied), before
  and after training (weights that are still all zero, like the LM's query at step 0, left out),
- the clone's final validation loss.

    OMP_NUM_THREADS=1 python bench/clone_symmetry.py    # MLP and LM, 3 seeds, 6 scales (~10 min on 1 core)
    python bench/clone_symmetry.py --quick         # smoke size
"""

from __future__ import annotations

import argparse
import statistics

import torch
from rich.console import Console
from rich.table import Table

from _harness import WIDTH, add_common_options, append_result, make_record
from hpogrow.growth import Clone
from hpogrow.parametrize import build_model
from hpogrow.tasks import FourierTask, LanguageTask, Task
from hpogrow.train import TrainConfig, TrainState, train

SCALES = (0.0, 1e-3, 1e-2, 0.1, 0.3, 1.0)


def copies_apart(model: torch.nn.Module, base: torch.nn.Module) -> float:
    """Smallest, over weights whose rows grew, relative distance between a row and its copy."""
    base_shapes = {name: parameter.shape for name, parameter in base.named_parameters()}
    distances = []
    for name, parameter in model.named_parameters():
        rows = base_shapes[name][0]
        if parameter.dim() != 2 or parameter.shape[0] < 2 * rows:
            continue
        original, copy = parameter[:rows].detach(), parameter[rows: 2 * rows].detach()  # (rows, fan_in)
        if original.norm() > 0:  # zero-initialised weights (the LM's query) say nothing yet
            distances.append(((original - copy).norm() / original.norm()).item())
    return min(distances)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=300, help="Adam steps of the base and of each clone")
    add_common_options(parser)
    args = parser.parse_args(argv)
    steps = 4 if args.quick else args.steps
    seeds = 1 if args.quick else args.seeds
    settings = [("mlp", FourierTask(depth=2, modes=64 if args.quick else 1000, eval_examples=256 if args.quick else 4096),
                 1e-2, 64 if args.quick else 256),
                ("lm", LanguageTask(depth=2, head_size=16, seq_len=16 if args.quick else 64,
                                    eval_tokens=1024 if args.quick else 16384), 1e-2, 16)]
    console = Console(width=WIDTH)
    rows = []
    for label, task, learning_rate, batch_size in settings:
        for seed in range(seeds):
            rows += _one_seed(label, task, learning_rate, batch_size, steps, seed, console)
    table = Table(title=f"clone 32 → 64 with perturbation s × μP init: {steps} Adam steps each for base and clone, "
                        f"{seeds} seed(s), mean [min, max] over seeds")
    for column in ("task", "s", "step-0 loss vs base", "copies apart at step 0", f"copies apart after {steps} steps",
                   "final loss", "final − final at s=0"):
        table.add_column(column, justify="right")
    summary = []
    for label, *_ in settings:
        for scale in SCALES:
            group = [row for row in rows if row["task"] == label and row["scale"] == scale]
            exact = {row["seed"]: row["final"] for row in rows if row["task"] == label and row["scale"] == 0}
            cells = {key: [row[key] for row in group] for key in ("relative_loss_0", "apart_0", "apart_end", "final")}
            cells["gain"] = [row["final"] - exact[row["seed"]] for row in group]  # paired by seed
            summary.append({"task": label, "scale": scale, **{key: statistics.fmean(v) for key, v in cells.items()}})
            table.add_row(label, f"{scale:g}", *(_spread(cells[key], fmt) for key, fmt in
                                                 (("relative_loss_0", "+.2%"), ("apart_0", ".1e"), ("apart_end", ".1e"),
                                                  ("final", ".4f"), ("gain", "+.4f"))))
    console.print(table)
    record = make_record("clone_symmetry", argv, args, rows=rows, summary=summary)
    append_result(args, record, [table], console=console)
    return record


def _spread(values: list[float], fmt: str) -> str:
    mean = format(statistics.fmean(values), fmt)
    return mean if len(values) == 1 else f"{mean} [{min(values):{fmt}}, {max(values):{fmt}}]"


def _one_seed(label: str, task: Task, learning_rate: float, batch_size: int, steps: int, seed: int,
              console: Console) -> list[dict]:
    tokens = steps * batch_size * task.tokens_per_example

    def config(evaluations: int) -> TrainConfig:
        return TrainConfig(learning_rate=learning_rate, batch_size=batch_size, tokens=tokens, evaluations=evaluations,
                           seed=seed, device="cpu")

    base = build_model(task, 32, 32, seed)
    trained = train(base, task, config(1))
    rows = []
    for scale in SCALES:
        console.print(f"{label} seed {seed}: s = {scale:g}")
        clone = Clone(noise_scale=scale).grow(base, build_model(task, 64, 32, seed + 1000), task)
        apart_0 = copies_apart(clone, base)
        result = train(clone, task, config(4), state=TrainState(data_position=trained.state.data_position))
        rows.append({"task": label, "seed": seed, "scale": scale, "base_loss": trained.final_loss,
                     "relative_loss_0": result.evaluations[0].val_loss / trained.final_loss - 1,
                     "apart_0": apart_0, "apart_end": copies_apart(clone, base), "final": result.final_loss})
    return rows


if __name__ == "__main__":
    main()
