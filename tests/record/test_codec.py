"""Typed records as flat user attributes (hpogrow/record/codec.py), and the rule that only
hpogrow/record/ names a stored key."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

import hpogrow
from hpogrow.record import GrowthLineage, RunFacts, RunRecord, SpeedupRecord
from hpogrow.record.codec import from_attrs, to_attrs

LINEAGE = GrowthLineage(grown_from="/runs/base/trial-3", grow_op="szp", grow_factor=4.0, param_ratio=3.7,
                        width_ratio=2.0, base_width=16, target_width=32, base_depth=2, target_depth=2, shrink=0.5,
                        carry_optimizer=True, base_tokens=4096, base_flops=1.5e9, grown_from_trial="s/base#3",
                        stage_widths=(24, 32))
RECORD = RunRecord(role="warmstart", width=32, pair=2, seed=1, tokens=8192, final_loss=2.5, fidelity_reached=8192,
                   facts=RunFacts(device="cpu", val_loss_se=0.01, resumed_at_tokens=(1024, 2048)), lineage=LINEAGE)


def test_a_nested_record_round_trips_through_flat_attributes():
    attrs = to_attrs(RECORD)
    # flattened: the nested records' fields sit at the top level, tuples become lists (JSON)
    assert attrs["device"] == "cpu" and attrs["grow_op"] == "szp" and attrs["target_width"] == 32
    assert attrs["stage_widths"] == [24, 32] and attrs["resumed_at_tokens"] == [1024, 2048]
    assert "facts" not in attrs and "lineage" not in attrs
    assert from_attrs(RunRecord, attrs) == RECORD


def test_none_is_not_stored_and_reads_back_as_none():
    attrs = to_attrs(RECORD)
    assert "checkpoint" not in attrs and "fail_reason" not in attrs and "mfu" not in attrs
    assert "speedup" not in attrs and "speedup_tokens" not in attrs
    read = from_attrs(RunRecord, attrs)
    assert read.checkpoint is None and read.speedup is None and read.facts.mfu is None


def test_absent_nested_records_read_back_as_none():
    attrs = to_attrs(RunRecord(role="base", width=16))
    assert attrs == {"role": "base", "width": 16, "pair": 0, "fidelity_reached": 0, "diverged": False,
                     "abandoned": False}
    read = from_attrs(RunRecord, attrs)
    assert read.lineage is None and read.facts is None and read.speedup is None


def test_a_nested_record_missing_a_required_field_is_none():
    attrs = to_attrs(RECORD)
    del attrs["grow_op"]
    assert from_attrs(RunRecord, attrs).lineage is None


def test_without_defaults_only_values_that_differ_from_their_defaults_are_kept():
    attrs = to_attrs(RunRecord(role="base", pair=0, diverged=True, facts=RunFacts(device="cpu")), defaults=False)
    assert attrs == {"role": "base", "diverged": True, "device": "cpu"}
    assert from_attrs(RunRecord, attrs) == RunRecord(role="base", diverged=True, facts=RunFacts(device="cpu"))


def test_missing_keys_take_the_field_defaults():
    read = from_attrs(RunRecord, {"width": 64})
    assert read == RunRecord(width=64) and read.pair == 0 and read.diverged is False


def test_no_two_records_stored_on_one_trial_share_a_key():
    """Flattening puts every nested field at the top level: a name in two records would overwrite."""
    names = [field.name for cls in (RunRecord, RunFacts, GrowthLineage, SpeedupRecord)
             for field in dataclasses.fields(cls) if field.name not in ("facts", "lineage", "speedup")]
    assert len(names) == len(set(names)), sorted({n for n in names if names.count(n) > 1})


_STORED_KEY_LITERAL = re.compile(r"""user_attrs\[["']|user_attrs\.get\(["']|set_user_attr\(["']|user_attrs=""")


def test_only_the_record_package_names_a_stored_key():
    package = Path(hpogrow.__file__).parent
    record = package / "record"
    offenders = [f"{path.relative_to(package.parent)}:{number}: {line.strip()}"
                 for path in sorted(package.rglob("*.py")) if record not in path.parents
                 for number, line in enumerate(path.read_text().splitlines(), start=1)
                 if _STORED_KEY_LITERAL.search(line)]
    assert offenders == []


def test_the_stored_key_pattern_catches_each_form():
    for line in ('t.user_attrs["role"]', "t.user_attrs.get('width')", 't.set_user_attr("x", 1)',
                 "create_trial(user_attrs={})"):
        assert _STORED_KEY_LITERAL.search(line), line
    assert not _STORED_KEY_LITERAL.search("RunRecord.of(trial)")
