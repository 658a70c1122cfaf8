import pytest

from hpogrow.errors import UsageError
from hpogrow.search.space import load_space


def test_default_spaces_ship_with_the_package():
    space = load_space(None, "lm")
    assert space.batch_sizes == (16, 32) and space.learning_rate_log
    assert load_space(None, "mlp").batch_sizes == (64, 128, 256)


@pytest.mark.parametrize("text, message", [
    ("learning_rate: {low: 1, high: 2}\n", "exactly the keys"),
    ("learning_rate: {low: 1, high: 2}\nbatch_size: {choices: [3]}\n", "powers of two"),
    ("learning_rate: {low: a, high: 2}\nbatch_size: {choices: [4]}\n", "malformed"),
    ("learning_rate: [\n", "not valid YAML"),
])
def test_bad_space_files(tmp_path, text, message):
    path = tmp_path / "space.yaml"
    path.write_text(text)
    with pytest.raises(UsageError, match=message):
        load_space(path)
