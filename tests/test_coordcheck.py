"""The coordinate check: an upward, paired, per-block slope gap against μP, dilution apart, and that
it separates what it should.

The real runs use tiny widths; the threshold they are judged by is the command's default
(:data:`hpogrow.coordcheck.THRESHOLD`), calibrated at the default sizes.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from hpogrow.cli import main
from hpogrow.coordcheck import (CONTROL, DILUTION_BOUND, REFERENCE, THRESHOLD, CoordCheckConfig, _output_dims,
                                _recording, gate_on_control, judge, run_coordcheck, width_slopes)
from hpogrow.errors import UsageError
from hpogrow.growth import ZeroPad
from hpogrow.parametrize import build_model
from hpogrow.stats import student_t_quantile
from hpogrow.tasks import LanguageTask

WIDTHS = (64, 128, 256, 512)
BASE = 32
SEEDS = (0, 1, 2)


def _frame(configuration: str, base_exponent: float = 0.0, new_exponent: float = 0.0, base_size: float = 1.0,
           seed_exponents: dict[int, float] | None = None, steps=(1, 2, 3), noise: float = 0.0) -> pd.DataFrame:
    """One width-scaled module: its base block (``BASE`` coordinates, ``base_size·w^base_exponent``),
    its new block (``w^new_exponent``, plus ``seed_exponents[seed]``) and their all-coordinate mean."""
    generator = np.random.default_rng(len(configuration))
    rows = []
    for seed in SEEDS:
        extra = (seed_exponents or {}).get(seed, 0.0)
        for width in WIDTHS:
            for t in steps:
                base = base_size * width ** base_exponent * math.exp(noise * generator.standard_normal())
                new = width ** (new_exponent + extra) * math.exp(noise * generator.standard_normal())
                share = BASE / width
                for block, l1 in (("base", base), ("new", new), ("all", share * base + (1 - share) * new)):
                    rows.append({"configuration": configuration, "seed": seed, "width": width,
                                 "module": "blocks.0.mlp", "block": block, "t": t, "l1": l1})
    return pd.DataFrame(rows)


def _judge(*frames: pd.DataFrame, threshold: float = 0.5):
    data = pd.concat([_frame(REFERENCE, noise=0.01), *frames])
    slopes = width_slopes(data)
    return {name: judge(slopes, name, threshold) for name in data.configuration.unique() if name != REFERENCE}


def test_the_statistic_is_the_upward_gap_of_a_block_with_a_paired_t_interval_over_seeds():
    verdicts = _judge(_frame("grows", new_exponent=0.7, seed_exponents={0: 0.0, 1: 0.05, 2: 0.1}),
                      _frame("shrinks", new_exponent=-0.7))
    grows = verdicts["grows"]
    assert (grows.module, grows.block) == ("blocks.0.mlp", "new")
    assert grows.instability.per_seed == pytest.approx((0.7, 0.75, 0.8), abs=0.02)
    half = student_t_quantile(0.975, 2) * np.std(grows.instability.per_seed, ddof=1) / math.sqrt(3)
    assert grows.instability.high - grows.instability.mean == pytest.approx(half)
    assert grows.label == "fail"
    # shrinking activations are no instability: the statistic is one-sided (the old check flagged |gap|)
    shrinks = verdicts["shrinks"]
    assert shrinks.label == "pass" and shrinks.shrink.mean == pytest.approx(-0.7, abs=0.02) and shrinks.shrink_flagged


def test_no_verdict_is_read_where_the_mup_control_does_not_pass():
    quiet, noisy = {0: 0.0, 1: 0.02, 2: 0.04}, {0: 0.0, 1: 0.6, 2: 1.2}  # the control's seeds spread 0–1.2
    grows = _frame("grows", new_exponent=0.7, seed_exponents=quiet)
    readable = gate_on_control(_judge(_frame(CONTROL, seed_exponents=quiet), grows))
    assert readable[CONTROL].label == "pass" and readable["grows"].label == "fail"
    unreadable = gate_on_control(_judge(_frame(CONTROL, seed_exponents=noisy), grows))
    assert unreadable[CONTROL].label == "undecided" and unreadable["grows"].label == "undecided"
    assert unreadable["grows"].instability.against(0.5) == "fail"  # the gap is kept, only its reading withheld
    assert unreadable["grows"].to_json()["against_threshold"] == "fail"


def test_dilution_of_a_fixed_base_block_is_reported_apart_and_stays_above_its_bound():
    # both blocks scale as μP does (exponent 0), but the base block is 100× larger: the all-coordinate
    # mean falls as its share BASE/width falls; the old statistic read this as a gap of about -0.9
    verdicts = _judge(_frame("diluted", base_size=100.0), _frame("steeper", base_size=100.0, base_exponent=-0.5,
                                                                  new_exponent=-0.5))
    diluted = verdicts["diluted"]
    assert diluted.label == "pass" and diluted.instability.high < 0.05
    assert DILUTION_BOUND < diluted.dilution.mean < -0.8 and not diluted.dilution_flagged
    # every block shrinking on top of dilution goes below -1: dilution alone cannot do that
    steeper = verdicts["steeper"]
    assert steeper.dilution.high < DILUTION_BOUND and steeper.dilution_flagged


def test_step_one_is_not_judged_and_a_diverged_run_fails():
    at_init = _frame("init", new_exponent=0.9, steps=(1,))
    later = _frame("init", steps=(2, 3))
    diverged = _frame("diverged")
    diverged.loc[(diverged.width == 512) & (diverged.t == 3), "l1"] = np.nan
    verdicts = _judge(pd.concat([at_init, later]), diverged)
    assert verdicts["init"].instability.high < 0.05 and verdicts["init"].label == "pass"
    assert verdicts["diverged"].instability.low == math.inf and verdicts["diverged"].label == "fail"
    with pytest.raises(UsageError, match="lower --lr"):
        judge(width_slopes(pd.concat([diverged.assign(configuration=REFERENCE), _frame("x")])), "x", 0.5)


def test_the_hooks_split_each_output_into_the_coordinates_growth_fills_from_the_base_and_the_rest():
    task = LanguageTask(depth=1, head_size=8, seq_len=8)
    base = build_model(task, 16, 16, seed=0)
    grown = ZeroPad().grow(base, build_model(task, 48, 16, seed=1), task)  # λ = 1, no noise
    inputs = task.batch(0, 2, torch.device("cpu"))[0]
    dims = _output_dims(base, inputs)
    assert dims["blocks.0.mlp.fc"] == 64 and dims["blocks.0.attn.value"] == 16 and dims["readout"] == 256
    records, base_records = [], []
    with _recording(grown, dims, records):
        grown(inputs)
    with _recording(base, dims, base_records):
        base(inputs)
    measured = {(module, block): l1 for module, block, l1 in records}
    of_base = {(module, block): l1 for module, block, l1 in base_records}
    # zero-padding: the new coordinates of the embeddings, value heads and MLP hidden units are zero, the
    # base block of the embeddings is the base model's (behind LayerNorm over the padded width it is not)
    for module in ("token_embedding", "position_embedding", "blocks.0.attn.value", "blocks.0.mlp.fc"):
        assert measured[module, "new"] == 0 and measured[module, "base"] > 0, module
        assert measured[module, "all"] == pytest.approx(measured[module, "base"] * dims[module] / (3 * dims[module]))
    assert measured["token_embedding", "base"] == pytest.approx(of_base["token_embedding", "all"])
    assert ("readout", "base") not in measured and ("readout", "all") in measured  # vocabulary-sized: whole


def test_too_few_seeds_or_a_base_width_at_a_checked_width_is_a_usage_error():
    with pytest.raises(UsageError, match="below every checked width"):
        CoordCheckConfig(widths=(64, 128, 256), base_width=64)
    with pytest.raises(UsageError, match="at least 3"):
        CoordCheckConfig(seeds=2)
    with pytest.raises(UsageError, match="unknown"):
        CoordCheckConfig(broken=("nonsense",))


TINY = dict(widths=(32, 64, 128), base_width=16, head_size=16, depth=1, seq_len=16, batch_size=8, steps=8, seeds=3,
            base_steps=40)
"""At these sizes (lr 1e-2, 8 steps), first seeds 0, 3, 6: the μP control 0.19–0.27 with upper ends
0.30–0.34; SP 1.61–1.75 (lower ends 1.15–1.47), torch-adam 1.64–1.67 (lower 1.49–1.55),
readout-no-1/width 1.00 (lower 1.00): the default threshold 0.8 separates them with room."""


def test_fails_sp_and_broken_mup_passes_the_mup_control_and_lambda_zero_is_mup():
    torch.set_num_threads(1)
    result = run_coordcheck(CoordCheckConfig(shrinks=(0.0,), broken=("torch-adam", "readout-no-1/width"), **TINY))
    verdicts = result.verdicts
    control = verdicts["μP"]
    assert control.label == "pass" and control.instability.high < THRESHOLD, control
    for name in ("SP", "broken: torch-adam", "broken: readout-no-1/width"):
        assert verdicts[name].label == "fail" and verdicts[name].instability.low > THRESHOLD, (name, verdicts[name])
    # λ = 0 is μP through the growth code, paired with the μP of its own seed: no gap at all
    zero = verdicts["warmstart λ=0"]
    assert zero.instability.per_seed == (0.0,) * 3 and zero.dilution.per_seed == (0.0,) * 3 and zero.label == "pass"


def test_coordcheck_command_prints_the_table_and_writes_csv_verdicts_and_plots(tmp_path, capsys):
    status = main(["coordcheck", "--widths", "16", "32", "48", "--base-width", "8", "--head-size", "8", "--depth", "1",
                   "--seq-len", "8", "--batch-size", "2", "--steps", "3", "--seeds", "3", "--base-steps", "2",
                   "--shrinks", "0.4", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert status == 0
    for text in ("largest upward gap", "95% paired", "warmstart λ=0.4", "SP", f"threshold {THRESHOLD:g}", "dilution",
                 "weights moved"):
        assert text in out, text
    data = pd.read_csv(tmp_path / "coordcheck.csv")
    assert list(data.columns) == ["configuration", "seed", "width", "module", "block", "t", "l1"]
    assert set(data.configuration) == {REFERENCE, "SP", "μP", "warmstart λ=0.4"} and set(data.t) == {1, 2, 3}
    verdicts = json.loads((tmp_path / "verdicts.json").read_text())
    assert list(verdicts["configurations"]) == ["SP", "μP", "warmstart λ=0.4"]
    entry = verdicts["configurations"]["warmstart λ=0.4"]
    assert len(entry["per_seed"]) == 3 and entry["threshold"] == THRESHOLD and entry["verdict"] in (
        "pass", "fail", "undecided") and entry["interval"][0] <= entry["statistic"] <= entry["interval"][1]
    assert entry["dilution"]["bound"] == DILUTION_BOUND and len(entry["dilution"]["per_seed"]) == 3
    assert len(list(tmp_path.glob("*.png"))) == 3
    written = list(tmp_path.iterdir())
    assert main(["coordcheck", "--widths", "32", "64", "128", "--base-width", "32", "--out", str(tmp_path / "x")]) == 2
    assert main(["coordcheck", "--seeds", "2", "--out", str(tmp_path / "x")]) == 2
    assert list(tmp_path.iterdir()) == written
