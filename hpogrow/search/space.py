"""Search spaces: learning rate (log scale) and batch size (powers of two), read from YAML.

A file looks like ``search_spaces/lm.yaml``::

    learning_rate: {low: 3.0e-4, high: 3.0e-2, log: true}
    batch_size: {powers_of_two: [16, 64]}    # or {choices: [16, 32, 64]}
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from hpogrow.errors import UsageError


@dataclass(frozen=True)
class SearchSpace:
    learning_rate_low: float
    learning_rate_high: float
    learning_rate_log: bool
    batch_sizes: tuple[int, ...]
    source: str = "inline"

    def __post_init__(self) -> None:
        if not 0 < self.learning_rate_low <= self.learning_rate_high:
            raise UsageError(f"{self.source}: learning_rate needs 0 < low <= high, got {self.learning_rate_low}..{self.learning_rate_high}")
        if not self.batch_sizes or any(b < 1 or b & (b - 1) for b in self.batch_sizes):
            raise UsageError(f"{self.source}: batch sizes must be powers of two, got {list(self.batch_sizes)}")

    def distributions(self) -> dict[str, Any]:
        import optuna

        return {
            "learning_rate": optuna.distributions.FloatDistribution(
                self.learning_rate_low, self.learning_rate_high, log=self.learning_rate_log),
            "batch_size": optuna.distributions.CategoricalDistribution(list(self.batch_sizes)),
        }

    def as_dict(self) -> dict[str, Any]:
        return {"learning_rate": {"low": self.learning_rate_low, "high": self.learning_rate_high,
                                  "log": self.learning_rate_log},
                "batch_size": {"choices": list(self.batch_sizes)}}


def load_space(path: str | Path | None = None, task_name: str = "lm") -> SearchSpace:
    """Read a search-space file; ``None`` loads the one shipped for ``task_name``, or
    ``search_spaces/default.yaml`` for tasks without one."""
    if path is None:
        shipped = resources.files("hpogrow.search_spaces")
        resource = shipped / f"{task_name}.yaml"
        if not resource.is_file():
            resource = shipped / "default.yaml"
        text, source = resource.read_text(), f"search_spaces/{resource.name}"
    else:
        path = Path(path)
        if not path.is_file():
            raise UsageError(f"--space {path}: no such file; pass a YAML file like search_spaces/lm.yaml")
        text, source = path.read_text(), str(path)
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise UsageError(f"{source}: not valid YAML ({str(error).splitlines()[0]})") from None
    if not isinstance(raw, dict) or set(raw) != {"learning_rate", "batch_size"}:
        found = sorted(raw) if isinstance(raw, dict) else type(raw).__name__
        raise UsageError(f"{source}: expected exactly the keys learning_rate and batch_size, found {found}")
    try:
        lr, batch = raw["learning_rate"], raw["batch_size"]
        if "powers_of_two" in batch:
            low, high = (int(v) for v in batch["powers_of_two"])
            sizes = tuple(2 ** k for k in range(max(low, 1).bit_length() - 1, high.bit_length()) if low <= 2 ** k <= high)
        else:
            sizes = tuple(int(v) for v in batch["choices"])
        return SearchSpace(float(lr["low"]), float(lr["high"]), bool(lr.get("log", True)), sizes, source)
    except (KeyError, TypeError, ValueError) as error:
        raise UsageError(f"{source}: malformed entry ({error}); see search_spaces/lm.yaml for the format") from None
