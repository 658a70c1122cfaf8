"""Data memory: peak resident memory of the same short ``hpogrow train`` run on token files of two
sizes (issue 10: a run's memory must not grow with its ``train.bin``).

For each size a nanoGPT-style folder is written under a temporary folder: ``train.bin`` of random
tokens below ``--vocab-size`` (uint16, written in chunks, so this process never holds it),
``val.bin`` of 100,000 tokens, no ``meta.pkl`` (the vocabulary comes from ``--vocab-size``, as
for OpenWebText's GPT-2 tokens). The same ``hpogrow train`` runs on each in a fresh process, the
sizes alternating, and the process's peak resident set is read from ``os.wait4`` (``ru_maxrss``).
The folders are deleted at the end.

    python bench/data_memory.py            # 2M vs 200M tokens, 2 repeats (~2 min, 0.4 GB in /tmp)
    python bench/data_memory.py --quick    # smoke size
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from _harness import WIDTH, add_common_options, alternate, append_result, make_record

LIMIT_MIB = 50
"""Issue 10's bound on the difference of peak memory between the sizes."""
_CHUNK = 10_000_000


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2_000_000, 200_000_000], help="train.bin tokens")
    parser.add_argument("--vocab-size", type=int, default=50257, help="tokens are drawn below it (GPT-2 BPE)")
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--tokens", type=int, default=32_768, help="training tokens of each run (16 steps)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workdir", help="where to write the token files (default: a temporary folder)")
    add_common_options(parser)
    args = parser.parse_args(argv)
    if args.quick:  # a small vocabulary: the smoke test should not pay for 50,257-way logits
        args.sizes, args.tokens, args.repeats, args.width, args.vocab_size = [20_000, 2_000_000], 4096, 1, 32, 1024
    console = Console(width=WIDTH)
    root = Path(tempfile.mkdtemp(prefix="hpogrow-data-memory-", dir=args.workdir))
    try:
        folders = {size: _token_folder(root / f"tokens-{size}", size, args.vocab_size) for size in args.sizes}
        console.print(f"wrote {', '.join(f'{size:,}' for size in args.sizes)}-token train.bin files under {root}")
        peaks = alternate({size: _peak_rss_of_train(folder, args, root / f"run-{size}")
                           for size, folder in folders.items()}, args.repeats, warmup=0)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    smallest = statistics.median(peaks[args.sizes[0]])
    rows = [{"tokens": size, "file_mib": size * 2 / 2**20, "peak_mib": statistics.median(values),
             "samples_mib": values, "over_smallest_mib": statistics.median(values) - smallest}
            for size, values in peaks.items()]
    table = Table(title=f"peak resident memory of `hpogrow train` (width {args.width}, {args.tokens:,} tokens, "
                        f"vocabulary {args.vocab_size:,}) by train.bin size (median of {args.repeats}, alternating)")
    for column in ("train.bin tokens", "file MiB", "peak RSS MiB", "min–max", "over the smallest"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(f"{row['tokens']:,}", f"{row['file_mib']:,.0f}", f"{row['peak_mib']:,.1f}",
                      f"{min(row['samples_mib']):,.1f}–{max(row['samples_mib']):,.1f}", f"{row['over_smallest_mib']:+,.1f}")
    console.print(table)
    spread = rows[-1]["over_smallest_mib"]
    notes = (f"A {args.sizes[-1] / args.sizes[0]:.0f}× larger train.bin moved the peak by {spread:+.1f} MiB "
             f"({'within' if abs(spread) < LIMIT_MIB else 'OUTSIDE'} the {LIMIT_MIB} MiB bound). Loading it whole as "
             f"int32, as before this change, would hold {args.sizes[-1] * 4 / 2**20:,.0f} MiB of tokens.")
    console.print(notes)
    record = make_record("data_memory", argv, args, rows=rows, limit_mib=LIMIT_MIB, within=abs(spread) < LIMIT_MIB)
    append_result(args, record, [table], notes, console)
    return record


def _token_folder(folder: Path, tokens: int, vocab_size: int) -> Path:
    """``train.bin`` of ``tokens`` random uint16 tokens, written chunk by chunk, and ``val.bin``."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    with (folder / "train.bin").open("wb") as handle:
        for first in range(0, tokens, _CHUNK):
            rng.integers(0, vocab_size, min(_CHUNK, tokens - first), dtype=np.uint16).tofile(handle)
    rng.integers(0, vocab_size, 100_000, dtype=np.uint16).tofile(folder / "val.bin")
    return folder


def _peak_rss_of_train(folder: Path, args: argparse.Namespace, out: Path):
    """A function that runs ``hpogrow train`` on ``folder`` in a fresh process and returns its
    peak resident set in MiB."""
    command = [sys.executable, "-m", "hpogrow", "train", "--data", str(folder), "--vocab-size", str(args.vocab_size),
               "--width", str(args.width), "--lr", "0.003", "--batch-size", "16", "--tokens", str(args.tokens),
               "--evaluations", "2", "--device", "cpu", "--out", str(out)]

    def run() -> float:
        shutil.rmtree(out, ignore_errors=True)
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                   env={**os.environ, "OMP_NUM_THREADS": "1"})
        _, status, usage = os.wait4(process.pid, 0)
        if status != 0:
            raise RuntimeError(f"{' '.join(command)} failed: {process.stderr.read().decode()[-2000:]}")
        return usage.ru_maxrss / 1024  # Linux reports KiB

    return run


if __name__ == "__main__":
    main()
