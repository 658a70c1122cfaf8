"""Errors that are the user's to fix (exit status 2 at the command line)."""

from __future__ import annotations


class UsageError(ValueError):
    """Bad input: a flag, a file, a width or a checkpoint that cannot be used as given.

    The message is one line that says what is wrong and what to do.
    """


class TrainingDiverged(RuntimeError):
    """A training run produced a non-finite loss and was stopped."""

    def __init__(self, tokens_seen: int, loss: float) -> None:
        self.tokens_seen = tokens_seen
        self.loss = loss
        super().__init__(
            f"loss became {loss} after {tokens_seen:,} tokens; the learning rate is probably too high"
        )

    def __reduce__(self):  # pickles (e.g. from a Ray worker) with its own arguments
        return type(self), (self.tokens_seen, self.loss)


class PipelineError(RuntimeError):
    """The pipeline cannot go on with what the study holds (e.g. no trial ran its full budget)."""
