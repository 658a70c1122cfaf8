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
    ({"pruner": "hyperband"}, "--pruner"),
    ({"evaluations": 1}, "--evaluations"),
    ({"stages": 2, "target_width": 256}, "--stages"),
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
    assert str(tmp_path) in config.storage_url
    assert SearchConfig(**LOCAL, storage="sqlite:////tmp/x.db").storage_url == "sqlite:////tmp/x.db"
