"""Target runs killed and resumed: the tokens a kill costs, and what the partial checkpoints cost.

A scratch run of the embedded LM (the run the search trains at target width) runs in a child
process with its partial checkpoints (:mod:`hpogrow.resume`, one every ``--checkpoint-every``
evaluations of 16); the child is SIGKILLed at a random moment, then run again to its end. The
tokens recomputed are those the killed child had trained past the checkpoint the rerun continued
from (the child writes its tokens every few steps, so the figure is a lower bound by at most
that many steps). The cost of checkpointing is the wall time of an unbroken run with partial
checkpoints against one without, alternating.

    python bench/target_resume.py            # LM at width 192, 6 kills (~10 min on 2 cores)
    python bench/target_resume.py --quick    # smoke size
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from _harness import REPOSITORY, WIDTH, add_common_options, alternate, append_result, make_record, median_ratio

_CHILD = """
import json, sys, time
sys.path[:0] = [{repository!r}]
from pathlib import Path
from hpogrow.resume import ResumePoint
from hpogrow.runs import CheckpointOwner, run_scratch
from hpogrow.tasks import FourierTask, LanguageTask
from hpogrow.train import TrainConfig, torch_threads
args = json.loads(sys.argv[1])
task = FourierTask(modes=64) if args["quick"] else LanguageTask()
config = TrainConfig(args["lr"], args["batch"], tokens=args["tokens"], evaluations=16, device="cpu")
progress = Path(args["progress"])
def on_tokens(tokens, loss):
    progress.write_text(str(tokens))
resume = ResumePoint(Path(args["folder"]) / "resume", args["every"]) if args["every"] else None
start = time.perf_counter()
with torch_threads(1):
    outcome = run_scratch(task, args["width"], args["base_width"], config, 0, Path(args["folder"]) / "final",
                          on_tokens=on_tokens, owner=CheckpointOwner("bench", "bench/target", 0), resume=resume)
print(json.dumps({{"seconds": time.perf_counter() - start, "resumed_at": list(outcome.extra.get("resumed_at_tokens", ())),
                  "tokens": outcome.state.tokens_seen, "final_loss": outcome.final_loss}}))
"""


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_options(parser)
    parser.add_argument("--width", type=int, default=192)
    parser.add_argument("--kills", type=int, default=6)
    parser.add_argument("--checkpoint-every", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2, help="unbroken runs with and without checkpoints, each")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.quick:
        args.width, args.kills, args.repeats = 32, 1, 1
    console = Console(width=WIDTH)
    spec = {"quick": args.quick, "width": args.width, "base_width": args.width // 2 if not args.quick else 16,
            "lr": 3e-3, "batch": 16, "tokens": 64 * 8 * 60 if args.quick else 16 * 128 * 320}
    draw = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="hpogrow-bench-resume-") as scratch:
        root = Path(scratch)
        console.print(f"unbroken runs with and without partial checkpoints, {args.repeats} each, alternating")
        fresh = iter(range(10**6))  # a new folder for every timed run: none resumes another
        seconds = alternate({side: lambda every=every: _child({**spec, "every": every},
                                                              root / f"timing{next(fresh)}")["seconds"]
                             for side, every in (("checkpoints", args.checkpoint_every), ("none", 0))}, args.repeats)
        duration = statistics.median(seconds["checkpoints"])
        interval = spec["tokens"] * args.checkpoint_every // 16
        rows = []
        for kill in range(args.kills):
            folder = root / f"kill{kill}"
            wait = draw.uniform(0.05, 0.95) * duration
            killed_at, ended = _killed(spec | {"every": args.checkpoint_every}, folder, wait)
            outcome = _child({**spec, "every": args.checkpoint_every}, folder)
            resumed = outcome["resumed_at"][0] if outcome["resumed_at"] else 0
            rows.append({"kill_after_s": wait, "tokens_at_kill": killed_at, "resumed_at": resumed,
                         "recomputed": max(0, killed_at - resumed), "final_tokens": outcome["tokens"],
                         "ended_before_kill": ended})
            console.print(f"kill {kill + 1}: {killed_at:,} tokens trained, resumed at {resumed:,}, "
                          f"recomputed {rows[-1]['recomputed']:,} (interval {interval:,})")
    ratio = median_ratio(seconds["checkpoints"], seconds["none"])
    table = Table(title=f"scratch run of {'Fourier' if args.quick else 'the LM'} at width {args.width}, "
                        f"{spec['tokens']:,} tokens, a partial checkpoint every {args.checkpoint_every} of 16 evaluations "
                        f"({interval:,} tokens), {args.kills} random SIGKILLs")
    for column in ("kill", "killed after", "tokens trained", "resumed at", "recomputed", "of the interval"):
        table.add_column(column, justify="right")
    for index, row in enumerate(rows):
        table.add_row(str(index + 1), f"{row['kill_after_s']:.1f} s", f"{row['tokens_at_kill']:,}",
                      f"{row['resumed_at']:,}", f"{row['recomputed']:,}", f"{row['recomputed'] / interval:.0%}")
    worst = max(row["recomputed"] for row in rows)
    notes = (f"Recomputed after a kill: at most {worst:,} tokens ({worst / interval:.0%} of one checkpoint interval, "
             f"{worst / spec['tokens']:.1%} of the run), mean {statistics.fmean(r['recomputed'] for r in rows):,.0f}; "
             f"every rerun ended at {spec['tokens']:,} tokens; {sum(r['ended_before_kill'] for r in rows)} of "
             f"{len(rows)} children had ended before their kill. Partial checkpoints cost {ratio[0] - 1:+.1%} of an unbroken "
             f"run's wall time (median ratio {ratio[0]:.3f}, range {ratio[1]:.3f}–{ratio[2]:.3f} over {args.repeats} "
             "alternating pairs).")
    console.print(table)
    console.print(notes)
    record = make_record("target_resume", argv, args, rows=rows, interval=interval, tokens=spec["tokens"],
                         worst_recomputed=worst, checkpoint_cost_ratio=ratio[0],
                         seconds={side: values for side, values in seconds.items()})
    append_result(args, record, [table], notes, console)
    return record


def _command(spec: dict, folder: Path) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    spec = {**spec, "folder": str(folder), "progress": str(folder / "progress")}
    return [sys.executable, "-c", _CHILD.format(repository=str(REPOSITORY)), json.dumps(spec)]


def _child(spec: dict, folder: Path) -> dict:
    """Run the child to its end in ``folder``; the outcome it printed."""
    done = subprocess.run(_command(spec, folder), capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _killed(spec: dict, folder: Path, wait: float) -> tuple[int, bool]:
    """Start the child, SIGKILL it ``wait`` seconds into its training; the tokens it had written
    by then, and whether it had ended before the kill."""
    child = subprocess.Popen(_command(spec, folder), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    progress = folder / "progress"
    while not progress.exists() and child.poll() is None:  # imports and set-up are not training
        time.sleep(0.02)
    time.sleep(wait)
    ended = child.poll() is not None
    child.send_signal(signal.SIGKILL)
    child.wait()
    return int(progress.read_text() or 0) if progress.exists() else 0, ended


if __name__ == "__main__":
    main()
