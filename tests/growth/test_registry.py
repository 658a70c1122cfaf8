"""Operators by name: specs, what operators declare, and operators a user registers."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path
from typing import ClassVar

import optuna
import pytest
import torch
from rich.console import Console

import hpogrow
from hpogrow.checkpoint import load_model, read_checkpoint, save_checkpoint
from hpogrow.errors import UsageError
from hpogrow.growth import (OPERATORS, Clone, GrowthOperator, ShrinkZeroPadPerturb, Stack, ZeroBlock, ZeroPad,
                            grow_checkpoint, parse_operators, register_operator, shrink_zero_pad_perturb, uses_shrink)
from hpogrow.parametrize import build_model
from hpogrow.train import TrainConfig, TrainState, train

from .helpers import MLP

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture
def registry():
    """Operators a test registers are gone after it."""
    saved = dict(OPERATORS)
    yield OPERATORS
    OPERATORS.clear()
    OPERATORS.update(saved)


class HalfPad(GrowthOperator):
    """A user's operator: the base zero-padded at half its weights, no perturbation."""

    name: ClassVar[str] = "half-pad"
    kind: ClassVar[str] = "width"
    preserves_function: ClassVar[str] = "no (the copied weights are halved)"
    pads_optimizer_state: ClassVar[bool] = True

    def grow(self, base, target, task):
        return shrink_zero_pad_perturb(base, target, shrink=0.5, noise_scale=0.0)


def test_operator_specs():
    assert [type(op) for op in parse_operators("zero-pad")] == [ZeroPad, type(None)]
    assert [type(op) for op in parse_operators("clone+stack")] == [Clone, Stack]
    assert type(parse_operators("zero-block")[1]) is ZeroBlock
    assert parse_operators("szp", shrink=0.3, noise_scale=0.5)[0] == ShrinkZeroPadPerturb(shrink=0.3, noise_scale=0.5)
    with pytest.raises(UsageError, match="unknown operator"):
        parse_operators("net2wider")
    with pytest.raises(UsageError, match="at most one width"):
        parse_operators("szp+clone")


def test_operators_say_what_they_grow_and_support():
    declared = {name: (cls.kind, cls.uses_shrink, cls.pads_optimizer_state) for name, cls in OPERATORS.items()}
    assert declared == {"szp": ("width", True, True), "zero-pad": ("width", False, True),
                        "clone": ("width", False, False), "stack": ("depth", False, False),
                        "zero-block": ("depth", False, True)}
    assert uses_shrink("szp+zero-block") and not uses_shrink("clone+zero-block")
    assert not uses_shrink("an-operator-registered-elsewhere")  # a study written by another process


def test_register_operator_checks_the_class(registry):
    class Nameless(HalfPad):
        name = "two+words"

    class Sideways(HalfPad):
        name, kind = "sideways", "diagonal"

    class Unfinished(GrowthOperator):
        name, kind, preserves_function = "unfinished", "width", "no"

    for bad, message in ((Nameless, "without '\\+'"), (Sideways, "'width' or 'depth'"), (Unfinished, "implement grow"),
                         (object, "subclass")):
        with pytest.raises(UsageError, match=message):
            register_operator(bad)

    class Impostor(HalfPad):
        name = "szp"

    with pytest.raises(UsageError, match="taken"):
        register_operator(Impostor)
    assert register_operator(HalfPad) is HalfPad and OPERATORS["half-pad"] is HalfPad


def test_a_user_operator_grows_a_checkpoint_with_what_it_declares(registry, tmp_path):
    config = TrainConfig(learning_rate=1e-2, batch_size=32, tokens=32 * 4, evaluations=1, device="cpu")
    base = build_model(MLP, 16, 16, seed=0)
    trained = train(base, MLP, config)
    path = save_checkpoint(tmp_path / "base", base, task=MLP, width=16, base_width=16, seed=0, state=trained.state,
                           train_config=config, optimizer=trained.optimizer)
    with pytest.raises(UsageError, match="unknown operator 'half-pad'"):
        grow_checkpoint(path, tmp_path / "early", target_width=32, operator="half-pad", task=MLP)
    register_operator(HalfPad)
    result = grow_checkpoint(path, tmp_path / "grown", target_width=32, operator="half-pad+zero-block",
                             carry_optimizer=True, task=MLP)  # declares pads_optimizer_state
    grown, task = load_model(result.path)
    assert task.depth == result.plan.target_depth == 3
    torch.testing.assert_close(grown.blocks[0].fc1.weight[:16, :16], 0.5 * base.blocks[0].fc1.weight)
    assert grown.blocks[0].fc1.weight[16:].abs().max() == 0
    assert read_checkpoint(result.path).config["lineage"]["grow_op"] == "half-pad+zero-block"
    assert (result.path / "optimizer.pt").exists()

    @register_operator
    class LoudPad(HalfPad):  # λ acts in it: the papers' caution above 0.6 applies, as for szp
        name, uses_shrink, pads_optimizer_state = "loud-pad", True, False

    def warns_about_shrink(operator: str) -> bool:
        result = grow_checkpoint(path, tmp_path / operator, target_width=32, operator=operator, shrink=0.8, task=MLP)
        return any("shrink 0.8" in message for message in result.warnings)

    assert warns_about_shrink("loud-pad") and not warns_about_shrink("half-pad")
    with pytest.raises(UsageError, match="not loud-pad"):
        grow_checkpoint(path, tmp_path / "carried", target_width=32, operator="loud-pad", carry_optimizer=True, task=MLP)


def test_a_user_operator_runs_through_the_pipeline(registry, one_thread, tmp_path):
    register_operator(HalfPad)
    config = hpogrow.SearchConfig(base_width=16, trials=1, tokens_per_param=4, evaluations=2, scheduler="none",
                                  device="cpu", executor="local", grow_op="half-pad", workdir=str(tmp_path / "work"),
                                  seeds=1, bases=1)
    result = hpogrow.run_pipeline(MLP, config, console=Console(file=io.StringIO()))
    assert result.warmstart.user_attrs["grow_op"] == "half-pad"
    winner, _ = load_model(result.winner.user_attrs["checkpoint"])
    grown, _ = load_model(result.plan.checkpoint_dir / result.plan.target_study.split("/", 1)[1] / "pair0" / "grown")
    torch.testing.assert_close(grown.blocks[0].fc1.weight[:16, :16], 0.5 * winner.blocks[0].fc1.weight)
    assert grown.blocks[0].fc1.weight[16:].abs().max() == 0
    storage_trials = optuna.load_study(study_name=result.plan.target_study, storage=config.storage_url).trials
    assert {t.user_attrs["role"] for t in storage_trials} == {"warmstart", "scratch"}


def test_readme_operator_example_runs(registry, tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    example = next(block for block in blocks if "register_operator" in block)
    code = example.replace('"/tmp/hpogrow-operator', f'"{tmp_path}')
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        exec(compile(code, "README.md", "exec"), {"__name__": "readme_operator_example"})
    width, depth, ratio = output.getvalue().split()
    assert int(depth) == 3 and abs(float(ratio) / 2 - 1) < 0.1
    assert (tmp_path / "grown" / "model.pt").exists()
