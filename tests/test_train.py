"""The training loop: schedules that keep mup's LR ratios, callbacks, divergence, accounting."""

from __future__ import annotations

import math

import pytest


from hpogrow.errors import TrainingDiverged
from hpogrow.parametrize import build_model
from hpogrow.train import TrainConfig, learning_rate_factor, make_optimizer, train


def test_training_lowers_the_validation_loss(lm_task):
    model = build_model(lm_task, 32, 32, seed=0)
    result = train(model, lm_task, TrainConfig(learning_rate=1e-2, batch_size=16, tokens=16 * 16 * 60,
                                               evaluations=3, device="cpu"))
    losses = [e.val_loss for e in result.evaluations]
    assert losses[0] == pytest.approx(math.log(256), rel=1e-3)  # zero readout: uniform prediction
    assert losses[-1] < losses[0] - 0.5
    assert result.state.tokens_seen == 16 * 16 * 60 and result.state.data_position == 16 * 60


def test_wsd_schedule_scales_every_group_keeping_mup_ratios(lm_task):
    config = TrainConfig(learning_rate=1e-2, batch_size=4, tokens=4 * 16 * 10, schedule="wsd", decay_fraction=0.5,
                         evaluations=2, device="cpu")
    assert [learning_rate_factor(config, s, 10) for s in (0, 4, 5, 6, 9)] == [1.0, 1.0, 1.0, 0.8, 0.2]
    model = build_model(lm_task, 64, 32, seed=0)
    optimizer = make_optimizer(model, config)
    ratios = sorted({g["initial_lr"] / config.learning_rate for g in optimizer.param_groups})
    assert ratios == [0.5, 1.0]
    seen = []
    train(model, lm_task, config, optimizer=optimizer, report=lambda e: seen.append(
        sorted(g["lr"] for g in optimizer.param_groups)))
    last = seen[-1]
    assert last[0] / last[-1] == pytest.approx(0.5)  # ratio survives the decay


def test_callback_can_stop_and_training_can_continue(mlp_task):
    config = TrainConfig(learning_rate=1e-2, batch_size=32, tokens=32 * 20, evaluations=4, device="cpu")
    model = build_model(mlp_task, 16, 16, seed=0)
    stopped = train(model, mlp_task, config, report=lambda e: e.tokens_seen >= 32 * 10)
    assert stopped.stopped_early and stopped.state.step == 10
    resumed = train(model, mlp_task, config, state=stopped.state, optimizer=stopped.optimizer)
    assert not resumed.stopped_early and resumed.state.step == 20 and resumed.state.data_position == 640
    assert [e.tokens_seen for e in resumed.evaluations] == [480, 640]


def test_non_finite_loss_raises(mlp_task):
    model = build_model(mlp_task, 16, 16, seed=0)
    with pytest.raises(TrainingDiverged, match="too high") as error:
        train(model, mlp_task, TrainConfig(learning_rate=1e30, batch_size=32, tokens=32 * 40, device="cpu"))
    assert error.value.tokens_seen > 0


def test_bf16_autocast_path_runs_on_cpu(mlp_task):
    model = build_model(mlp_task, 16, 16, seed=0)
    result = train(model, mlp_task, TrainConfig(learning_rate=1e-2, batch_size=32, tokens=32 * 4, evaluations=2,
                                                device="cpu", precision="bf16"))
    assert all(math.isfinite(e.val_loss) for e in result.evaluations)


@pytest.mark.slow
def test_compile_option_trains_through_torch_compile(mlp_task):
    import torch._dynamo

    def run(compile: bool):
        model = build_model(mlp_task, 16, 16, seed=0)
        return train(model, mlp_task, TrainConfig(learning_rate=1e-2, batch_size=32, tokens=32 * 8, evaluations=2,
                                                  device="cpu", compile=compile))

    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    compiled = run(True)  # real inductor on CPU: about 20 s
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] > 0  # dynamo captured the model
    eager = run(False)
    assert [e.val_loss for e in compiled.evaluations] == pytest.approx([e.val_loss for e in eager.evaluations], rel=1e-4)
    assert 0 < compiled.eval_seconds < compiled.seconds and compiled.mfu is None  # MFU on CUDA only


def test_config_validation():
    with pytest.raises(ValueError, match="learning rate"):
        TrainConfig(learning_rate=0, batch_size=1, tokens=1)
    with pytest.raises(ValueError, match="schedule"):
        TrainConfig(learning_rate=1, batch_size=1, tokens=1, schedule="cosine")



def test_validation_loss_weighs_every_token_equally_and_has_its_standard_error():
    """The LM's validation loss is the mean over every held-out token (the held-out windows as one
    batch), and its standard error the spread of the windows' means over √windows."""
    import torch
    import torch.nn.functional as F

    from hpogrow.parametrize import build_model
    from hpogrow.tasks import LanguageTask
    from hpogrow.tasks.base import validation_loss

    task = LanguageTask(depth=1, head_size=8, seq_len=16, eval_tokens=16 * 150)  # 150 windows, in several batches
    model = build_model(task, 16, 16, seed=0).eval()
    torch.manual_seed(0)
    for parameter in model.parameters():  # an untrained μP readout predicts uniformly: every window alike
        parameter.data.normal_(0, 0.3)
    batches = task.eval_batches(torch.device("cpu"))
    loss, error = validation_loss(task, model, batches)
    windows = torch.cat([torch.cat([inputs, targets[:, -1:]], dim=1) for inputs, targets in batches])  # (N, T+1)
    with torch.no_grad():
        per_token = F.cross_entropy(model(windows[:, :-1]).flatten(0, 1), windows[:, 1:].flatten(), reduction="none")
    per_window = per_token.view(len(windows), -1).mean(dim=1)
    assert len(batches) > 1 and loss == pytest.approx(float(per_token.mean()), rel=1e-5)
    assert error == pytest.approx(float(per_window.std() / len(windows) ** 0.5), rel=1e-4)
