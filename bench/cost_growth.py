"""Cost growth: time per token and peak memory of a training step against width and context.

Two sweeps of the μP GPT (head size 32, depth 2, 2,048 tokens per step, mup's AdamW): width
64 → 512 at context 128, and context 64 → 1,024 at width 128. Every configuration's step (forward,
backward, optimizer) is timed in rounds that alternate all configurations of a sweep, median over
repeats; times are given per token and as a ratio to the sweep's first configuration, beside the
ratio that 6·N per token predicts and the ratio with attention added (6·N + 12·depth·context·width,
PaLM appendix B). Peak memory: the growth of a fresh process's peak resident set over training
two steps (CPU), or ``torch.cuda.max_memory_allocated`` (GPU).

    python bench/cost_growth.py            # ~3 min on 2 cores
    python bench/cost_growth.py --quick    # smoke size
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from _harness import WIDTH, add_common_options, alternate, append_result, make_record
from hpogrow.parametrize import build_model, count_parameters, resolve_device
from hpogrow.tasks import LanguageTask
from hpogrow.throughput import model_flops_utilization, training_flops, training_flops_per_token
from hpogrow.train import TrainConfig, make_optimizer


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[64, 128, 256, 512])
    parser.add_argument("--seq-lens", type=int, nargs="+", default=[64, 128, 256, 512, 1024])
    parser.add_argument("--width-for-seq", type=int, default=128, help="width of the context sweep")
    parser.add_argument("--seq-for-width", type=int, default=128, help="context of the width sweep")
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--head-size", type=int, default=32)
    parser.add_argument("--tokens-per-step", type=int, default=2048)
    parser.add_argument("--steps", type=int, default=3, help="steps per timed measurement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--peak-tflops", type=float, help="GPU peak for MFU (default: looked up from the GPU name)")
    parser.add_argument("--probe-memory", nargs=2, type=int, metavar=("WIDTH", "SEQ_LEN"), help=argparse.SUPPRESS)
    add_common_options(parser)
    args = parser.parse_args(argv)
    if args.probe_memory:  # child process of a CPU run: print one JSON line and stop
        print(json.dumps({"peak_mib": _cpu_peak_mib(args, *args.probe_memory)}))
        return {}
    if args.quick:
        args.widths, args.seq_lens, args.width_for_seq, args.seq_for_width = [32, 64], [32, 64], 32, 32
        args.head_size, args.tokens_per_step, args.steps, args.repeats = 16, 256, 1, 1
    device = resolve_device(args.device)
    console = Console(width=WIDTH)
    sweeps = {"width": [(width, args.seq_for_width) for width in args.widths],
              "context": [(args.width_for_seq, seq_len) for seq_len in args.seq_lens]}
    results = {name: _sweep(configs, args, device, console) for name, configs in sweeps.items()}
    tables = [_table(name, rows, args, device) for name, rows in results.items()]
    for table in tables:
        console.print(table)
    notes = _verdict(results)
    console.print(notes)
    record = make_record("cost_growth", argv, args, device=str(device), **results)
    append_result(args, record, tables, notes, console)
    return record


def _task(args, seq_len: int) -> LanguageTask:
    return LanguageTask(depth=args.depth, head_size=args.head_size, seq_len=seq_len, eval_tokens=seq_len)


def _step_runner(args, width: int, seq_len: int, device: torch.device):
    """A closure that trains ``args.steps`` steps and returns seconds per token."""
    task = _task(args, seq_len)
    model = build_model(task, width, args.head_size, seed=0, device=device)
    batch_size = max(1, args.tokens_per_step // seq_len)
    config = TrainConfig(learning_rate=1e-3, batch_size=batch_size, tokens=1, device=str(device))
    optimizer = make_optimizer(model, config)
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if args.precision == "bf16"
                else contextlib.nullcontext())
    position = 0

    def run() -> float:
        nonlocal position
        _synchronize(device)
        started = time.perf_counter()
        for _ in range(args.steps):
            batch = task.batch(position, batch_size, device)
            with autocast:
                loss = task.loss(model, batch)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            position += batch_size
        _synchronize(device)
        return (time.perf_counter() - started) / (args.steps * batch_size * seq_len)

    return model, run


def _sweep(configs: list[tuple[int, int]], args, device: torch.device, console: Console) -> list[dict]:
    console.print(f"timing {len(configs)} configurations (width, context): {configs}")
    runners = {config: _step_runner(args, *config, device) for config in configs}
    seconds = alternate({config: run for config, (_, run) in runners.items()}, args.repeats)
    rows = []
    for (width, seq_len), (model, _) in runners.items():
        per_token = statistics.median(seconds[(width, seq_len)])
        params = count_parameters(model).compute
        flops = training_flops_per_token(model)
        rows.append({"width": width, "seq_len": seq_len, "compute_params": params, "seconds_per_token": per_token,
                     "samples": seconds[(width, seq_len)], "six_n": training_flops(params, 1), "flops_per_token": flops,
                     "gflops_per_second": flops / per_token / 1e9,
                     "mfu": model_flops_utilization(flops, 1 / per_token, device, args.peak_tflops),
                     "peak_mib": _peak_mib(args, width, seq_len, device)})
    first = rows[0]
    for row in rows:
        row["time_ratio"] = row["seconds_per_token"] / first["seconds_per_token"]
        row["six_n_ratio"] = row["six_n"] / first["six_n"]
        row["flops_ratio"] = row["flops_per_token"] / first["flops_per_token"]
    return rows


def _peak_mib(args, width: int, seq_len: int, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        _, run = _step_runner(args, width, seq_len, device)
        run()
        return torch.cuda.max_memory_allocated(device) / 2**20
    command = [sys.executable, str(Path(__file__).resolve()), "--probe-memory", str(width), str(seq_len),
               "--depth", str(args.depth), "--head-size", str(args.head_size),
               "--tokens-per-step", str(args.tokens_per_step), "--precision", args.precision, "--device", "cpu"]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return json.loads(output.strip().splitlines()[-1])["peak_mib"]


def _cpu_peak_mib(args, width: int, seq_len: int) -> float:
    """In a fresh process: peak resident set growth over building the model and two steps.

    A step of the smallest model runs first (it loads the corpus and pages in the kernels'
    code) and then Linux's peak counter is reset (``/proc/self/clear_refs``), so that the peak
    counts the model, gradients, Adam state and activations only."""
    args.steps = 1
    _step_runner(args, args.head_size, seq_len, torch.device("cpu"))[1]()
    try:  # VmHWM, not ru_maxrss: a forked child's ru_maxrss keeps the parent's size at the fork
        Path("/proc/self/clear_refs").write_text("5")
        before, peak = _proc_status_kib("VmRSS"), lambda: _proc_status_kib("VmHWM")
    except OSError:  # not Linux, or not allowed: the high-water mark so far
        before, peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    args.steps = 2
    _, run = _step_runner(args, width, seq_len, torch.device("cpu"))
    run()
    return (peak() - before) / 1024


def _proc_status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise OSError(f"no {field} in /proc/self/status")


def _table(name: str, rows: list[dict], args, device: torch.device) -> Table:
    fixed = f"context {args.seq_for_width}" if name == "width" else f"width {args.width_for_seq}"
    table = Table(title=f"cost against {name} on {device.type} ({fixed}, depth {args.depth}, {args.tokens_per_step:,} "
                        f"tokens per step, {args.precision}, median of {args.repeats})")
    columns = ["width", "context", "N (non-embedding)", "µs/token", "time ×", "6N ×", "6N+attention ×",
               "GFLOP/s (6N+attention)", "peak MiB"] + (["MFU"] if device.type == "cuda" else [])
    for column in columns:
        table.add_column(column, justify="right")
    for row in rows:
        cells = [str(row["width"]), str(row["seq_len"]), f"{row['compute_params']:,}",
                 f"{row['seconds_per_token'] * 1e6:.2f}", f"{row['time_ratio']:.2f}", f"{row['six_n_ratio']:.2f}",
                 f"{row['flops_ratio']:.2f}", f"{row['gflops_per_second']:.1f}", f"{row['peak_mib']:.0f}"]
        if device.type == "cuda":
            cells.append("—" if row["mfu"] is None else f"{row['mfu']:.1%}")
        table.add_row(*cells)
    return table


def _verdict(results: dict[str, list[dict]]) -> str:
    """One line per sweep: the log-log slope of time per token between its ends, against 6·N's."""
    lines = []
    for name, rows in results.items():
        first, last = rows[0], rows[-1]
        key = "width" if name == "width" else "seq_len"
        span = math.log(last[key] / first[key])
        slope = math.log(last["time_ratio"]) / span
        model_slope = math.log(last["six_n_ratio"]) / span
        flops_slope = math.log(last["flops_ratio"]) / span
        rate = [f"{row['gflops_per_second']:.0f}" for row in rows]
        lines.append(f"{name} {first[key]} → {last[key]}: time per token grows as {name}^{slope:.2f} "
                     f"(6·N predicts ^{model_slope:.2f}, with attention ^{flops_slope:.2f}); "
                     f"achieved GFLOP/s {' → '.join(rate)}.")
    return "\n".join(lines)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


if __name__ == "__main__":
    main()
