"""μP bookkeeping (hpogrow/parametrize.py): building models at a width, base shapes, counting."""

from __future__ import annotations

import mup
import pytest
import torch

from hpogrow.errors import UsageError
from hpogrow.parametrize import (attach_base_shapes, build_model, build_standard_model, check_width, count_parameters,
                                 count_parameters_at, make_base_shapes, resolve_device)


def _same_weights(first: torch.nn.Module, second: torch.nn.Module) -> bool:
    return all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))


def test_build_model_is_deterministic_in_the_seed(lm_task):
    first, again, other = (build_model(lm_task, 16, 8, seed) for seed in (0, 0, 1))
    assert _same_weights(first, again)
    assert not _same_weights(first, other)


def test_build_model_leaves_the_global_random_state_alone(mlp_task):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_model(mlp_task, 16, 8, seed=5)
    assert torch.equal(torch.rand(3), expected)


def test_build_model_sets_width_multipliers_from_the_base_width(mlp_task):
    model = build_model(mlp_task, 32, 8, seed=0)
    assert model.readout.weight.infshape.width_mult() == 4
    assert build_model(mlp_task, 8, 8, seed=0).readout.weight.infshape.width_mult() == 1


def test_check_width_names_what_was_wrong_and_a_width_to_try(lm_task):
    check_width(lm_task, 24)  # whole heads
    with pytest.raises(UsageError, match=r"base width 21 is not a positive multiple of 8 .*'lm'.*try 24"):
        check_width(lm_task, 21, "base width")
    with pytest.raises(UsageError, match="^width 0 "):
        check_width(lm_task, 0)
    with pytest.raises(UsageError, match="base width 12"):
        make_base_shapes(lm_task, 12)
    with pytest.raises(UsageError, match="width 13"):
        build_model(lm_task, 13, 8, seed=0)


def test_count_parameters_totals_every_parameter_and_leaves_embeddings_out_of_compute(lm_task, mlp_task):
    model = build_model(lm_task, 16, 8, seed=0)
    counts = count_parameters(model)
    assert counts.total == sum(p.numel() for p in model.parameters())
    embeddings = model.token_embedding.weight.numel() + model.position_embedding.weight.numel()
    assert counts.compute == counts.total - embeddings
    mlp = build_model(mlp_task, 16, 8, seed=0)
    assert count_parameters(mlp).compute == count_parameters(mlp).total == sum(p.numel() for p in mlp.parameters())
    assert count_parameters_at(lm_task, 16) == counts  # the same without allocating


def test_standard_model_has_no_width_multipliers_and_a_random_readout(mlp_task):
    model = build_standard_model(mlp_task, 32, seed=0)
    assert model.readout.weight.infshape.width_mult() == 1
    assert torch.count_nonzero(model.readout.weight) > 0
    assert _same_weights(model, build_standard_model(mlp_task, 32, seed=0))


def test_attach_base_shapes_keeps_trained_weights(mlp_task):
    model = build_model(mlp_task, 16, 8, seed=0)
    torch.nn.init.ones_(model.readout.weight)
    before = {name: value.clone() for name, value in model.state_dict().items()}
    attach_base_shapes(model, make_base_shapes(mlp_task, 8))
    assert all(torch.equal(before[name], value) for name, value in model.state_dict().items())
    assert model.readout.weight.infshape.width_mult() == 2


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(UsageError, match="--device nonsense"):
        resolve_device("nonsense")
    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match="CUDA is not available"):
            resolve_device("cuda")
