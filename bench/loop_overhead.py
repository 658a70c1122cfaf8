"""Loop overhead: hpogrow's training loop against a bare PyTorch loop, tokens/second ratio.

Both sides train the same fresh μP GPT (same seed) on the same batches of the embedded corpus
with the same optimizer (mup's AdamW, same settings as hpogrow's) and evaluate the same held-out
set at the same steps; hpogrow's side is :func:`hpogrow.train.train` as the API runs it, and
again with the rich progress bar the CLI shows (rendered into a buffer, as to a terminal). The
sides alternate, order rotated each repeat; ratios are medians of the per-repeat ratios. On a
GPU the table adds model FLOPs utilisation (MFU).

    python bench/loop_overhead.py             # widths 64 and 128, depth 2, context 128, batch 32 (~5 min on 2 cores)
    python bench/loop_overhead.py --quick     # smoke size
    python bench/loop_overhead.py --device cuda --widths 1024 --depth 6 --precision bf16   # the GPU figures
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import time

import mup
import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table

from _harness import WIDTH, add_common_options, alternate, append_result, make_record, median_ratio
from hpogrow.parametrize import build_model, count_parameters, resolve_device
from hpogrow.cli.progress import RichDisplay
from hpogrow.progress import QUIET, Display, run_bar
from hpogrow.tasks import LanguageTask
from hpogrow.throughput import model_flops_utilization, training_flops_per_token
from hpogrow.train import TrainConfig, train


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=50, help="training steps per timed run")
    parser.add_argument("--evaluations", type=int, default=2, help="evaluations per timed run (plus one before step 1)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per side (after one warm-up round)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model (both sides)")
    parser.add_argument("--peak-tflops", type=float, help="GPU peak for MFU (default: looked up from the GPU name)")
    add_common_options(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.widths, args.depth, args.seq_len, args.batch_size, args.steps, args.repeats = [32], 1, 32, 8, 6, 2
    device = resolve_device(args.device)
    task = LanguageTask(depth=args.depth, head_size=16 if args.quick else 32, seq_len=args.seq_len,
                        eval_tokens=1024 if args.quick else 8192)
    console = Console(width=WIDTH)
    rows = [_measure(task, width, args, device, console) for width in args.widths]

    table = Table(title=f"training loop: hpogrow vs bare PyTorch on {device.type} (depth {args.depth}, context "
                        f"{args.seq_len}, batch {args.batch_size}, {args.precision}{', compiled' if args.compile else ''}, "
                        f"{args.steps} steps per run, median of {args.repeats})")
    for column in ("width", "params", "bare tokens/s", "hpogrow tokens/s", "ratio (min–max)",
                   "with progress bar", "ratio (min–max)", "MFU"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(str(row["width"]), f"{row['params']:,}", f"{row['bare']:,.0f}", f"{row['hpogrow']:,.0f}",
                      f"{row['ratio']:.3f} ({row['ratio_min']:.3f}–{row['ratio_max']:.3f})", f"{row['progress']:,.0f}",
                      f"{row['progress_ratio']:.3f} ({row['progress_ratio_min']:.3f}–{row['progress_ratio_max']:.3f})",
                      "—" if row["mfu"] is None else f"{row['mfu']:.1%}")
    console.print(table)
    worst = min(row["ratio"] for row in rows)
    notes = (f"Lowest hpogrow/bare ratio: {worst:.3f} (target ≥ 0.95). "
             + ("MFU: pending a GPU run (this machine has none)." if device.type != "cuda" else
                "MFU = (6·N + 12·depth·context·width) × tokens/s ÷ the GPU's peak dense bf16 FLOP/s."))
    console.print(notes)
    record = make_record("loop_overhead", argv, args, rows=rows, device=str(device))
    append_result(args, record, [table], notes, console)
    return record


def _measure(task: LanguageTask, width: int, args, device: torch.device, console: Console) -> dict:
    config = TrainConfig(learning_rate=1e-2, batch_size=args.batch_size, evaluations=args.evaluations, device=str(device),
                         tokens=args.steps * args.batch_size * task.tokens_per_example, precision=args.precision,
                         compile=args.compile)
    tokens = config.tokens

    def fresh_model():
        return build_model(task, width, min(args.widths), seed=0).to(device)

    def hpogrow_side(display: Display = QUIET) -> float:
        model = fresh_model()
        _synchronize(device)
        started = time.perf_counter()
        with run_bar(display, "train", tokens) as on_tokens:
            train(model, task, config, on_tokens=on_tokens)
        _synchronize(device)
        return tokens / (time.perf_counter() - started)

    def progress_side() -> float:
        console_buffer = Console(file=io.StringIO(), force_terminal=True, width=WIDTH)
        with RichDisplay(console_buffer) as display:
            return hpogrow_side(display)

    def bare_side() -> float:
        model = fresh_model()
        _synchronize(device)
        started = time.perf_counter()
        bare_loop(model, task, config, device)
        _synchronize(device)
        return tokens / (time.perf_counter() - started)

    console.print(f"width {width}: {args.repeats} timed runs of {tokens:,} tokens per side")
    figures = alternate({"bare": bare_side, "hpogrow": hpogrow_side, "progress": progress_side}, args.repeats)
    ratio = median_ratio(figures["hpogrow"], figures["bare"])
    progress_ratio = median_ratio(figures["progress"], figures["bare"])
    model = fresh_model()
    hpogrow_rate = statistics.median(figures["hpogrow"])
    return {"width": width, "params": count_parameters(model).total, "tokens_per_run": tokens,
            "bare": statistics.median(figures["bare"]), "hpogrow": hpogrow_rate,
            "progress": statistics.median(figures["progress"]), "ratio": ratio[0], "ratio_min": ratio[1],
            "ratio_max": ratio[2], "progress_ratio": progress_ratio[0], "progress_ratio_min": progress_ratio[1],
            "progress_ratio_max": progress_ratio[2], "samples": figures,
            "flops_per_token": training_flops_per_token(model),
            "mfu": model_flops_utilization(training_flops_per_token(model), hpogrow_rate, device, args.peak_tflops)}


def bare_loop(model: torch.nn.Module, task: LanguageTask, config: TrainConfig, device: torch.device) -> list[float]:
    """What a user would write by hand: mup's AdamW, batches from the task, evaluations at the
    same steps as hpogrow's; returns the validation losses."""
    fused = {"fused": True} if device.type in ("cuda", "cpu") else {}  # as hpogrow's make_optimizer
    optimizer = mup.MuAdamW(model.parameters(), lr=config.learning_rate, betas=(config.beta1, config.beta2),
                            weight_decay=config.weight_decay, **fused)
    forward = torch.compile(model) if config.compile else model
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if config.precision == "bf16"
                else contextlib.nullcontext())
    eval_batches = task.eval_batches(device)
    steps = config.tokens // (config.batch_size * task.tokens_per_example)
    eval_steps = {round(k * steps / config.evaluations) for k in range(config.evaluations + 1)}
    losses = []
    for step in range(steps + 1):
        if step in eval_steps:
            model.eval()
            with torch.no_grad(), autocast:
                losses.append(torch.stack([F.cross_entropy(forward(x).flatten(0, 1).float(), y.flatten())
                                           for x, y in eval_batches]).mean().item())
            model.train()
        if step == steps:
            break
        inputs, targets = task.batch(step * config.batch_size, config.batch_size, device)  # (B, T), (B, T)
        with autocast:
            loss = F.cross_entropy(forward(inputs).flatten(0, 1).float(), targets.flatten())
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return losses


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


if __name__ == "__main__":
    main()
