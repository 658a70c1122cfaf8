"""Data-parallel target runs: one target-size run on 1 and on 2 Ray Train DDP workers, tokens/s.

Both sides are :func:`hpogrow.search.executors.ray_train.fit_data_parallel` on a local Ray
runtime, one CPU per worker (so one torch thread each), training the same fresh μP GPT
(``run_scratch``, same seed, same batches, the same held-out evaluations) on the embedded corpus;
only the worker count differs. The figure of each side is the training loop's own tokens/s
(``RunOutcome.tokens_per_second``: steps and evaluations, not the workers' start), and beside it
the wall time of the whole fit (worker start included). The sides alternate, order rotated each
repeat; the speedup is the median of the per-repeat ratios.

    python bench/data_parallel.py            # width 128, depth 2, context 128, batch 32, 60 steps (~4 min on 2 cores)
    python bench/data_parallel.py --quick    # smoke size
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import tempfile
import time

from rich.console import Console
from rich.table import Table

from _harness import WIDTH, add_common_options, alternate, append_result, make_record, median_ratio
from hpogrow.parametrize import build_model, count_parameters
from hpogrow.runs import run_scratch
from hpogrow.search.executors.ray_join import join_ray
from hpogrow.search.executors.ray_train import fit_data_parallel
from hpogrow.tasks import LanguageTask
from hpogrow.train import TrainConfig


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32, help="global batch (split over the workers)")
    parser.add_argument("--steps", type=int, default=60, help="training steps per run")
    parser.add_argument("--evaluations", type=int, default=2, help="evaluations per run (plus one before step 1)")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per side (after one warm-up round)")
    parser.add_argument("--ray-cpus", type=int, default=4, help="logical CPUs of the local Ray runtime")
    add_common_options(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.width, args.depth, args.seq_len, args.batch_size, args.steps, args.repeats = 32, 1, 32, 8, 4, 1
    task = LanguageTask(depth=args.depth, head_size=16 if args.quick else 32, seq_len=args.seq_len,
                        eval_tokens=1024 if args.quick else 8192)
    config = TrainConfig(learning_rate=1e-2, batch_size=args.batch_size, evaluations=args.evaluations, device="cpu",
                         tokens=args.steps * args.batch_size * task.tokens_per_example)
    run = functools.partial(run_scratch, task, args.width, args.width, config, 0, None)
    console = Console(width=WIDTH)

    import ray
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Ray workers cannot import bench/
    join_ray(None, num_cpus=args.ray_cpus)
    walls: dict[int, list[float]] = {1: [], 2: []}
    try:
        with tempfile.TemporaryDirectory(prefix="hpogrow-bench-dp-") as storage:
            def side(workers: int) -> float:
                started = time.perf_counter()
                outcome = fit_data_parallel(run, workers, use_gpu=False, cpus_per_worker=1, gpus_per_worker=0,
                                            storage_path=storage, name=f"w{workers}-{len(walls[workers])}",
                                            max_failures=0, on_evaluation=_ignore)
                walls[workers].append(time.perf_counter() - started)
                return outcome.tokens_per_second

            console.print(f"width {args.width}: {args.repeats} timed runs of {config.tokens:,} tokens per side")
            figures = alternate({"1": functools.partial(side, 1), "2": functools.partial(side, 2)}, args.repeats,
                                warmup=0 if args.quick else 1)
    finally:
        ray.shutdown()
    warm = 0 if args.quick else 1  # the warm-up round's wall times are dropped like its rates
    speedup = median_ratio(figures["2"], figures["1"])
    row = {"width": args.width, "params": count_parameters(build_model(task, args.width, args.width, 0)).total,
           "tokens_per_run": config.tokens, "one_worker": statistics.median(figures["1"]),
           "two_workers": statistics.median(figures["2"]), "speedup": speedup[0], "speedup_min": speedup[1],
           "speedup_max": speedup[2], "wall_one": statistics.median(walls[1][warm:]),
           "wall_two": statistics.median(walls[2][warm:]), "samples": figures}

    table = Table(title=f"one target run on Ray Train DDP workers, CPU, gloo (GPT width {args.width}, depth "
                        f"{args.depth}, context {args.seq_len}, global batch {args.batch_size}, {args.steps} steps, "
                        f"1 CPU per worker, median of {args.repeats})")
    for column in ("params", "1 worker tokens/s", "2 workers tokens/s", "speedup (min–max)", "fit wall s (1 / 2)"):
        table.add_column(column, justify="right")
    table.add_row(f"{row['params']:,}", f"{row['one_worker']:,.0f}", f"{row['two_workers']:,.0f}",
                  f"{row['speedup']:.2f}× ({row['speedup_min']:.2f}–{row['speedup_max']:.2f})",
                  f"{row['wall_one']:.1f} / {row['wall_two']:.1f}")
    console.print(table)
    notes = ("Ideal is 2×. What keeps it below: this machine has 2 cores, shared with the Ray runtime and the "
             "driver (and other work); every step all-reduces every parameter's gradient over gloo; every rank "
             "evaluates the whole held-out set and draws the whole global batch before keeping its half.")
    console.print(notes)
    record = make_record("data_parallel", argv, args, modules=("torch", "mup", "ray"), rows=[row])
    append_result(args, record, [table], notes, console)
    return record


def _ignore(evaluation) -> None:
    """The evaluations' live feed, unused here."""


if __name__ == "__main__":
    main()
