"""A full search's logged losses, for replaying schedulers offline (issue 23, item 1).

Every configuration of a grid (``--lrs`` learning rates log-spaced over the LM search space ×
its batch sizes) is trained to the largest budget any candidate design lands on, evaluating at
every rung of every candidate design (and on a regular grid), with the plan's own rounding. The
held-out loss of each evaluation unit is kept at every candidate budget, so that replays can tell
whether two configurations differ by more than the eval set's noise (a paired standard error).
The runs use a constant learning rate, so a run's curve up to a smaller budget is exactly the
run to that budget: one pool serves every design. Written as JSON (not to RESULTS.md: the
replay, ``bench/halving_replay.py``, reports from it).

    python bench/halving_pool.py --base-width 64 --out studies/pool-w64.json   # ~5 min on 2 cores
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import tempfile
import time
from pathlib import Path

CANDIDATES = ((2, 3), (3, 3), (4, 2), (4, 1), (8, 1), (16, 1), (3, 2), (2, 2))
"""(reduction factor, rungs below the budget) of the designs a replay may ask about."""


def _plan(width: int, tokens_per_param: float, seed: int):
    from hpogrow.search import SearchConfig
    from hpogrow.search.schedule import rung_schedule
    from hpogrow.search.plan import make_plan
    from hpogrow.tasks import LanguageTask

    task = LanguageTask()
    config = SearchConfig(base_width=width, tokens_per_param=tokens_per_param, executor="local",
                          workdir=tempfile.mkdtemp(prefix="hpogrow-pool-"), seed=seed, scheduler="none")
    plan = make_plan(task, config)
    step = max(plan.space.batch_sizes) * task.tokens_per_example
    asked = tokens_per_param * plan.growth.base_params
    designs = {f"{rf}^{k}": rung_schedule(asked, step, "asha", rf, k) for rf, k in CANDIDATES}
    return task, plan, step, asked, designs


def _train(job):
    import torch

    torch.set_num_threads(1)
    from dataclasses import replace

    from hpogrow.checkpoint import load_model, read_checkpoint
    from hpogrow.runs import BaseTrial

    width, tokens_per_param, seed, lr, batch, folder = job
    task, plan, step, asked, designs = _plan(width, tokens_per_param, seed)
    budgets = sorted({s.budget for s in designs.values()})
    rungs = sorted({r for s in designs.values() for r in s.rungs})
    grid = list(range(step, budgets[-1] + 1, step))
    template = replace(plan.template, tokens=budgets[-1], eval_tokens=tuple(sorted(set(grid) | set(rungs))),
                       evaluations=len(set(grid) | set(rungs)))
    trial = BaseTrial(task, width, template, Path(folder))
    curve, units = {}, {}

    def report(event):
        curve[event.evaluation.tokens_seen] = event.evaluation.val_loss
        if event.evaluation.tokens_seen in budgets and event.checkpoint is not None:
            model, _ = load_model(read_checkpoint(event.checkpoint), task)
            model.eval()
            with torch.no_grad():
                units[event.evaluation.tokens_seen] = task.eval_losses(model, task.eval_batches(torch.device("cpu"))).tolist()
        return False

    start = time.perf_counter()
    try:
        trial.run({"learning_rate": lr, "batch_size": batch}, 0, report, rung_tokens=budgets)
        diverged = None
    except Exception as error:  # a diverged run keeps its curve up to the divergence
        diverged = str(error)
    return {"learning_rate": lr, "batch_size": batch, "curve": {str(k): v for k, v in sorted(curve.items())},
            "units": {str(k): v for k, v in units.items()}, "diverged": diverged,
            "seconds": time.perf_counter() - start}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-width", type=int, default=64)
    parser.add_argument("--tokens-per-param", type=float, default=1.0)
    parser.add_argument("--lrs", type=int, default=32, help="learning rates, log-spaced over the search space")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    task, plan, step, asked, designs = _plan(args.base_width, args.tokens_per_param, args.seed)
    low, high = plan.space.learning_rate_low, plan.space.learning_rate_high
    lrs = [math.exp(math.log(low) + (math.log(high) - math.log(low)) * i / (args.lrs - 1)) for i in range(args.lrs)]
    scratch = tempfile.mkdtemp(prefix="hpogrow-pool-ckpt-")
    jobs = [(args.base_width, args.tokens_per_param, args.seed, lr, batch, f"{scratch}/{i}-{batch}")
            for i, lr in enumerate(lrs) for batch in plan.space.batch_sizes]
    start = time.perf_counter()
    if args.processes == 1:
        runs = [_train(job) for job in jobs]
    else:
        with multiprocessing.get_context("spawn").Pool(args.processes) as pool:
            runs = pool.map(_train, jobs, chunksize=1)
    out = {"base_width": args.base_width, "tokens_per_param": args.tokens_per_param, "seed": args.seed,
           "base_params": plan.growth.base_params, "asked_tokens": asked, "step_tokens": step,
           "designs": {name: {"budget": s.budget, "rungs": list(s.rungs)} for name, s in designs.items()},
           "runs": runs, "seconds": time.perf_counter() - start}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out))
    print(f"{len(runs)} runs in {out['seconds']:.0f} s -> {args.out}")
    return out


if __name__ == "__main__":
    main()
