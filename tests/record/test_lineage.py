"""Growth lineage (hpogrow/record/lineage.py): one schema for checkpoints and trials, no Optuna needed."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
import yaml

from hpogrow.record.codec import from_attrs, to_attrs
from hpogrow.record.lineage import GrowthLineage

PARENT = GrowthLineage(grown_from="/runs/a", grow_op="szp", grow_factor=4.0, param_ratio=3.9, width_ratio=2.0,
                       base_width=16, target_width=32, base_depth=2, target_depth=2, shrink=0.3,
                       carry_optimizer=False, base_tokens=2048, base_flops=1e8)


def test_a_lineage_with_its_parent_survives_a_yaml_round_trip():
    parent = yaml.safe_load(yaml.safe_dump(to_attrs(PARENT)))  # the base checkpoint's config.yaml ``lineage``
    child = dataclasses.replace(PARENT, grown_from="/runs/b", base_width=32, target_width=64, stage_widths=(32, 64),
                                grown_from_trial="s/base#3", parent=parent)
    stored = yaml.safe_load(yaml.safe_dump(to_attrs(child)))  # the grown checkpoint's
    assert from_attrs(GrowthLineage, stored) == child
    assert from_attrs(GrowthLineage, stored).parent["grown_from"] == "/runs/a"


def test_a_lineage_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        PARENT.shrink = 0.5


def test_writing_a_lineage_does_not_import_optuna():
    code = "import sys, hpogrow.record\nhpogrow.record.GrowthLineage\nprint('optuna' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
