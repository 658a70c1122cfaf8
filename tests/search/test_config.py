"""What `hpogrow search` accepts (hpogrow/search/config.py): bad values fail in one line naming the flag."""

from __future__ import annotations

import pytest

from hpogrow.errors import UsageError
from hpogrow.search import SearchConfig

LOCAL = {"executor": "local", "device": "cpu"}


@pytest.mark.parametrize("values, flag", [
    ({"trials": 0}, "--trials"),
    ({"base_width": -8}, "--base-width"),
    ({"tokens_per_param": 0.0}, "--tokens-per-param"),
    ({"seeds": 0}, "--seeds"),
    ({"bases": 0}, "--bases"),
    ({"bases": 3, "seeds": 2}, "--bases"),  # pair k grows base k mod 3: base 2 would have no pair
    ({"scheduler": "hyperband"}, "--scheduler"),  # Ray Tune's, not in process
    ({"reduction_factor": 1}, "--reduction-factor"),
    ({"evaluations": 1}, "--evaluations"),
    ({"stages": 2, "target_width": 256}, "--stages"),
    ({"checkpoint_every": 0}, "--checkpoint-every"),
    ({"workers_per_run": 2}, "--workers-per-run"),  # Ray Train only: not silently one process in process
])
def test_a_bad_value_names_its_flag(values, flag):
    with pytest.raises(UsageError) as refused:
        SearchConfig(**LOCAL, **values)
    message = str(refused.value)
    assert message.startswith(flag) and "\n" not in message


def test_gpus_per_trial_on_the_cpu_is_refused_with_the_fix():
    with pytest.raises(UsageError, match="--gpus-per-trial 1.0 with --device cpu: use --device auto or cuda"):
        SearchConfig(executor="ray", device="cpu", gpus_per_trial=1.0)


def test_the_defaults_are_valid_and_the_storage_lives_in_the_workdir(tmp_path):
    config = SearchConfig(**LOCAL, workdir=str(tmp_path))
    assert config.trials == 8 and config.seeds == 2 and config.stages == 1
    assert config.bases == 2  # the speedup's interval covers the base by default
    assert SearchConfig(**LOCAL, seeds=1).bases == 1  # one pair grows the winner: --seeds 1 alone is no error
    assert str(tmp_path) in config.storage_url
    assert SearchConfig(**LOCAL, storage="sqlite:////tmp/x.db").storage_url == "sqlite:////tmp/x.db"


def test_workers_per_run_must_split_every_batch_size_of_the_space(tmp_path):
    from hpogrow.search.plan import make_plan
    from hpogrow.tasks import FourierTask

    space = tmp_path / "space.yaml"
    space.write_text("learning_rate: {low: 1.0e-3, high: 1.0e-1, log: true}\nbatch_size: {powers_of_two: [16, 32]}\n")
    config = SearchConfig(executor="ray", device="cpu", base_width=16, workers_per_run=3, space=str(space),
                          workdir=str(tmp_path))
    with pytest.raises(UsageError, match=r"^--workers-per-run 3: batch sizes \[16, 32\] of the search space do not split"):
        make_plan(FourierTask(modes=64), config)
