"""Paper 002's coordinate-check finding, reproduced on a small GPT with a stated criterion.

Criterion: the steepest log-log slope of a module's mean |activation| against width, at the last
of 3 Adam steps, is below 0.35 ("flat": less than ×1.27 per doubling of width) for μP and for
warmstarted μP with λ ≤ 0.6, and above 1 for standard parameterization.
"""

from __future__ import annotations

from hpogrow.cli import main
from hpogrow.coordcheck import CoordCheckConfig, run_coordcheck, write_outputs


def test_mup_and_warmstarts_up_to_0_6_stay_flat_sp_grows(tmp_path):
    config = CoordCheckConfig(widths=(32, 64, 128, 256), head_size=16, seq_len=32, batch_size=8, steps=3, seeds=2,
                              base_steps=50, shrinks=(0.2, 0.4, 0.6))
    assert config.flat_slope == 0.35
    result = run_coordcheck(config)
    slopes = {name: steepest for name, (steepest, _) in result.verdicts.items()}
    assert slopes["SP"] > 1.0
    for name in ("μP", "warmstart λ=0.2", "warmstart λ=0.4", "warmstart λ=0.6"):
        assert slopes[name] < config.flat_slope, (name, slopes[name])
    written = write_outputs(result, tmp_path)
    assert written[0].read_text().startswith("width,module,t,l1,config")
    assert len(written) == 1 + 5 and all(p.stat().st_size > 1000 for p in written[1:])
    assert set(result.data.t.unique()) == {1, 2, 3}


def test_coordcheck_command_writes_csv_plots_and_verdicts(tmp_path, capsys):
    status = main(["coordcheck", "--widths", "32", "64", "--shrinks", "0.4", "--steps", "2", "--seeds", "1",
                   "--head-size", "16", "--seq-len", "16", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert status == 0 and "warmstart λ=0.4" in out and "SP" in out
    assert (tmp_path / "coordcheck.csv").exists() and len(list(tmp_path.glob("*.png"))) == 3
    assert main(["coordcheck", "--widths", "64", "32"]) == 2
