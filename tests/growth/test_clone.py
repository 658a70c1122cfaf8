"""``clone``: exact copies with readout compensation, and the perturbation that lets copies part."""

from __future__ import annotations

import pytest
import torch

from hpogrow.growth import CLONE_NOISE_SCALE, Clone, parse_operators
from hpogrow.parametrize import build_model
from hpogrow.train import TrainConfig, TrainState, train

from .helpers import GPT, MLP, max_difference, trained_like


def _copies_apart(grown: torch.nn.Module, base: torch.nn.Module) -> dict[str, float]:
    """For every weight whose rows doubled: ‖W[j] − W[j + d_b]‖ / ‖W[j]‖ over the copied rows."""
    base_rows = {name: parameter.shape[0] for name, parameter in base.named_parameters()}
    apart = {}
    for name, parameter in grown.named_parameters():
        rows = base_rows[name]
        if parameter.dim() == 2 and parameter.shape[0] == 2 * rows:
            original, copy = parameter[:rows].detach(), parameter[rows:].detach()  # (rows, fan_in) each
            apart[name] = ((original - copy).norm() / original.norm()).item()
    return apart


def test_clone_without_readout_compensation_breaks_preservation(float64):
    """The compensation is what makes clone exact: undoing it must show up."""
    base = trained_like(build_model(MLP, 16, 16, seed=0))
    grown = Clone(noise_scale=0.0).grow(base, build_model(MLP, 32, 16, seed=1), MLP)
    assert max_difference(MLP, base, grown) < 1e-12
    with torch.no_grad():
        grown.readout.weight /= 2  # what forgetting width_mult_t / width_mult_b would leave
    assert max_difference(MLP, base, grown) > 1e-3


def test_clone_noise_is_the_mup_init_scaled(float64):
    base = trained_like(build_model(MLP, 16, 16, seed=0))
    noisy = Clone(noise_scale=0.1).grow(base, build_model(MLP, 32, 16, seed=1), MLP)
    exact = Clone(noise_scale=0.0).grow(base, build_model(MLP, 32, 16, seed=1), MLP)
    difference = (noisy.blocks[0].fc1.weight - exact.blocks[0].fc1.weight).std().item()
    assert difference == pytest.approx(0.1 * 32 ** -0.5, rel=0.15)  # s × the μP init std


def test_default_clone_changes_the_function_only_by_its_perturbation(float64):
    """Step 0: the default clone differs from the base by an amount proportional to the noise
    scale (first order), vanishing with it."""
    base = trained_like(build_model(MLP, 16, 16, seed=0))
    width_operator, _ = parse_operators("clone")
    assert width_operator == Clone(noise_scale=CLONE_NOISE_SCALE) and CLONE_NOISE_SCALE > 0
    differences = [max_difference(MLP, base, Clone(noise_scale=scale).grow(base, build_model(MLP, 32, 16, seed=1), MLP))
                   for scale in (0.0, CLONE_NOISE_SCALE / 100, CLONE_NOISE_SCALE / 10)]
    assert differences[0] < 1e-12 < differences[1]
    assert differences[2] / differences[1] == pytest.approx(10, rel=0.1)


@pytest.mark.parametrize("task, batch_size", [(MLP, 64), (GPT, 8)])
def test_copied_units_part_under_training_with_the_default_clone(one_thread, task, batch_size):
    """Duplicated units get identical gradients: without a perturbation they stay equal forever
    (the added width unused). The default clone's copies differ after training, also where the
    perturbation added nothing (zero-initialised weights such as the LM's query)."""
    config = TrainConfig(learning_rate=1e-2, batch_size=batch_size, tokens=60 * batch_size * task.tokens_per_example,
                         evaluations=1, device="cpu")
    base = build_model(task, 16, 16, seed=0)
    trained = train(base, task, config)
    clone = parse_operators("clone")[0].grow(base, build_model(task, 32, 16, seed=1), task)
    before = _copies_apart(clone, base)
    train(clone, task, config, state=TrainState(data_position=trained.state.data_position))
    after = _copies_apart(clone, base)
    assert after and min(after.values()) > 0.02, after
    if task is GPT:
        assert before["blocks.0.attn.query.weight"] == 0 < after["blocks.0.attn.query.weight"]
