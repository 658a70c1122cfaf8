"""Language modelling with the μP GPT (the default task, ``--task lm``)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hpogrow.data import Corpus, WindowStream, data_kind, load_corpus, vocabulary_size
from hpogrow.models.gpt import GPT, GPTConfig
from hpogrow.tasks.base import Task


class LanguageTask(Task):
    """Next-token prediction on a token corpus.

    Args:
        depth: transformer blocks.
        head_size: attention head size; widths are multiples of it.
        seq_len: context length; one example is ``seq_len`` tokens.
        data: ``None`` for the CPython standard library source, ``synthetic[:SEED]`` for the
            built-in synthetic language, or a path (see :mod:`hpogrow.data.corpus`).
        eval_tokens: size of the fixed held-out evaluation set, in tokens.
        data_seed: seed of the order in which training windows are visited.
        vocab_size: vocabulary of token files, overriding ``meta.pkl`` or, without one, GPT-2's
            50,257 (as nanoGPT assumes); may pad any vocabulary (50304, as nanoGPT does).
        dtype: integer type of token files, ``uint16`` or ``uint32``.
    """

    residual_outputs = ("attn.proj.weight", "mlp.proj.weight")
    name = "lm"
    eval_logits = 1 << 26
    """Most logits one evaluation batch may hold (256 MiB in fp32): large vocabularies evaluate
    in smaller batches."""

    def __init__(self, depth: int = 2, head_size: int = 32, seq_len: int = 128, data: str | None = None,
                 eval_tokens: int = 16384, data_seed: int = 0, vocab_size: int | None = None,
                 dtype: str = "uint16") -> None:
        self.depth, self.head_size, self.seq_len = depth, head_size, seq_len
        # paths absolute, so that Ray workers (which run in folders of their own) find them too
        self.data = data if data is None or data_kind(data) == "synthetic" else str(Path(data).resolve())
        self.eval_tokens, self.data_seed, self.dtype = eval_tokens, data_seed, dtype
        self.vocab_size = vocabulary_size(self.data, vocab_size, dtype)  # no token is read for it
        self._given_vocab_size = vocab_size
        self.width_step = head_size
        self.tokens_per_example = seq_len
        self._corpus: Corpus | None = None
        self._train: WindowStream | None = None
        self._summary: dict[str, Any] | None = None

    @property
    def corpus(self) -> Corpus:
        """The data, opened on first use (in NumPy: the caller's default device does not matter)."""
        if self._corpus is None:
            self._corpus = load_corpus(self.data, self._given_vocab_size, self.dtype)
            self._train = WindowStream(self._corpus.train, self.seq_len, self.data_seed)
        return self._corpus

    @property
    def train_stream(self) -> WindowStream:
        self.corpus  # opens the data and the stream on first use
        return self._train

    def model_config(self, width: int) -> GPTConfig:
        return GPTConfig(width=width, depth=self.depth, head_size=self.head_size, seq_len=self.seq_len,
                         vocab_size=self.vocab_size)

    def build_model(self, width: int) -> nn.Module:
        return GPT(self.model_config(width))

    def batch(self, position: int, batch_size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        windows = self.train_stream.windows(position, batch_size)  # (B, T+1)
        if device.type == "cuda":  # page-locked, so that the copy does not wait for the GPU
            windows = windows.pin_memory()
        windows = windows.to(device, non_blocking=True)
        return windows[:, :-1], windows[:, 1:]

    def _eval_shape(self) -> tuple[int, int]:
        """Batches and windows per batch of the held-out set: at most 64 windows and
        :attr:`eval_logits` logits a batch, all batches the same size."""
        stream = WindowStream(self.corpus.validation, self.seq_len, seed=0)
        count = max(1, self.eval_tokens // self.seq_len)
        count = count if stream.n_windows is None else min(count, stream.n_windows)
        largest = max(1, min(64, self.eval_logits // (self.seq_len * self.vocab_size)))
        batches = math.ceil(count / largest)
        return batches, count // batches

    def _eval_windows(self) -> torch.Tensor:
        """The fixed held-out set: the first windows of the validation split in a seed-0 order,
        the same for every run, in equal batches (so that the mean of batch means is the mean
        over windows). ``(N, T+1)``."""
        batches, size = self._eval_shape()
        return WindowStream(self.corpus.validation, self.seq_len, seed=0).windows(0, batches * size)

    def eval_batches(self, device: torch.device) -> list[tuple[torch.Tensor, torch.Tensor]]:
        windows = self._eval_windows().to(device)
        return [(chunk[:, :-1], chunk[:, 1:]) for chunk in windows.split(self._eval_shape()[1])]

    def loss(self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        inputs, targets = batch  # (B, T), (B, T)
        logits = model(inputs)  # (B, T, V)
        return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten())

    def eval_losses(self, model: nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        """Mean loss of each held-out window, ``(N,)``: windows have equal length, so every
        token weighs the same in their mean."""
        per_window = []
        for inputs, targets in batches:  # (B, T), (B, T)
            logits = model(inputs)  # (B, T, V)
            losses = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), reduction="none")  # (B·T,)
            per_window.append(losses.view(targets.shape).mean(dim=1))  # (B,)
        return torch.cat(per_window)

    def training_windows(self) -> int | None:
        return self.train_stream.n_windows

    def with_depth(self, depth: int) -> Task:
        return type(self)(**{k: v for k, v in {**self.describe(), "depth": depth}.items() if k != "name"})

    def describe(self) -> dict[str, Any]:
        spec = {"name": self.name, "depth": self.depth, "head_size": self.head_size, "seq_len": self.seq_len,
                "data": self.data, "eval_tokens": self.eval_tokens, "data_seed": self.data_seed}
        if self.data is not None:  # the resolved vocabulary: a checkpoint rebuilds without meta.pkl
            spec["vocab_size"] = self.vocab_size
        if self.dtype != "uint16":
            spec["dtype"] = self.dtype
        return spec

    def data_summary(self) -> dict[str, Any]:
        """The corpus summary with the training windows at this context length; for the
        synthetic language also the entropy floor of the evaluation set (computed once)."""
        if self._summary is None:
            summary = dict(self.corpus.summary, windows=self.train_stream.n_windows)
            if summary["kind"] == "synthetic":
                summary["entropy_floor"] = self._entropy_floor()
            self._summary = summary
        return self._summary

    def _entropy_floor(self) -> dict[str, float]:
        """The Bayes-optimal loss on the evaluation windows (what a perfect model's validation
        loss would be) and a 95% interval for the mean over all windows of the stream."""
        language = self.corpus.validation.language
        per_window = language.bayes_loss(self._eval_windows().numpy()).mean(axis=1)  # (N,)
        mean = float(per_window.mean())
        half_width = 1.96 * float(per_window.std(ddof=1)) / math.sqrt(len(per_window)) if len(per_window) > 1 else math.nan
        return {"value": round(mean, 4), "interval_95": [round(mean - half_width, 4), round(mean + half_width, 4)],
                "windows": len(per_window), "context": self.seq_len}

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without the opened corpus (a worker process reopens it on first use)."""
        return {**self.__dict__, "_corpus": None, "_train": None}

    def __repr__(self) -> str:
        return f"LanguageTask({', '.join(f'{k}={v!r}' for k, v in self.describe().items() if k != 'name')})"
