"""The error types (hpogrow/errors.py)."""

from __future__ import annotations

import pickle

from hpogrow.errors import PipelineError, TrainingDiverged, UsageError


def test_training_diverged_says_when_and_pickles_with_its_arguments():
    error = TrainingDiverged(12_345, float("nan"))
    assert str(error) == "loss became nan after 12,345 tokens; the learning rate is probably too high"
    copy = pickle.loads(pickle.dumps(error))  # as from a Ray worker
    assert type(copy) is TrainingDiverged and copy.tokens_seen == 12_345 and str(copy) == str(error)
    infinite = pickle.loads(pickle.dumps(TrainingDiverged(7, float("inf"))))
    assert infinite.loss == float("inf") and infinite.args == TrainingDiverged(7, float("inf")).args


def test_usage_errors_are_value_errors_and_pipeline_errors_are_not():
    assert issubclass(UsageError, ValueError)
    assert issubclass(TrainingDiverged, RuntimeError) and issubclass(PipelineError, RuntimeError)
    assert not issubclass(PipelineError, ValueError)
