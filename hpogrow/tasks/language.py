"""Byte-level language modelling with the μP GPT (the default task, ``--task lm``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hpogrow.corpus import Corpus, WindowStream, load_corpus
from hpogrow.models.gpt import GPT, GPTConfig
from hpogrow.tasks.base import Task


class LanguageTask(Task):
    """Next-token prediction on a token corpus.

    Args:
        depth: transformer blocks.
        head_size: attention head size; widths are multiples of it.
        seq_len: context length; one example is ``seq_len`` tokens.
        data: ``None`` for the CPython standard library source, or a path (see
            :func:`hpogrow.corpus.load_corpus`).
        eval_tokens: size of the fixed held-out evaluation set, in tokens.
        data_seed: seed of the order in which training windows are visited.
    """

    residual_outputs = ("attn.proj.weight", "mlp.proj.weight")
    name = "lm"

    def __init__(self, depth: int = 2, head_size: int = 32, seq_len: int = 128,
                 data: str | None = None, eval_tokens: int = 16384, data_seed: int = 0) -> None:
        self.depth, self.head_size, self.seq_len = depth, head_size, seq_len
        # absolute, so that Ray workers (which run in folders of their own) find it too
        self.data = None if data is None else str(Path(data).resolve())
        self.eval_tokens, self.data_seed = eval_tokens, data_seed
        self.width_step = head_size
        self.tokens_per_example = seq_len
        self._corpus: Corpus | None = None
        self._train: WindowStream | None = None

    @property
    def corpus(self) -> Corpus:
        if self._corpus is None:
            self._corpus = load_corpus(self.data)
            self._train = WindowStream(self._corpus.train, self.seq_len, self.data_seed)
        return self._corpus

    def model_config(self, width: int) -> GPTConfig:
        vocab_size = 256 if self.data is None else self.corpus.summary["vocab_size"]
        return GPTConfig(width=width, depth=self.depth, head_size=self.head_size,
                         seq_len=self.seq_len, vocab_size=max(vocab_size, 256))

    def build_model(self, width: int) -> nn.Module:
        return GPT(self.model_config(width))

    def batch(self, position: int, batch_size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        self.corpus  # loads the corpus and the stream on first use
        windows = self._train.windows(position, batch_size)  # (B, T+1)
        if device.type == "cuda":  # page-locked, so that the copy does not wait for the GPU
            windows = windows.pin_memory()
        windows = windows.to(device, non_blocking=True)
        return windows[:, :-1], windows[:, 1:]

    def eval_batches(self, device: torch.device) -> list[tuple[torch.Tensor, torch.Tensor]]:
        stream = WindowStream(self.corpus.validation, self.seq_len, seed=0)
        count = min(max(1, self.eval_tokens // self.seq_len), stream.n_windows)
        windows = stream.windows(0, count).to(device)
        return [(chunk[:, :-1], chunk[:, 1:]) for chunk in windows.split(64)]

    def loss(self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        inputs, targets = batch  # (B, T), (B, T)
        logits = model(inputs)  # (B, T, V)
        return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten())

    def with_depth(self, depth: int) -> Task:
        return type(self)(**{k: v for k, v in {**self.describe(), "depth": depth}.items() if k != "name"})

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "depth": self.depth, "head_size": self.head_size,
                "seq_len": self.seq_len, "data": self.data, "eval_tokens": self.eval_tokens,
                "data_seed": self.data_seed}

    def data_summary(self) -> dict[str, Any]:
        return dict(self.corpus.summary, windows=self._train.n_windows)

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without the loaded corpus (a worker process reloads it on first use)."""
        return {**self.__dict__, "_corpus": None, "_train": None}

    def __repr__(self) -> str:
        return f"LanguageTask({', '.join(f'{k}={v!r}' for k, v in self.describe().items() if k != 'name')})"


