"""μP models built with Microsoft's ``mup``: a GPT-style decoder and a residual MLP."""

from hpogrow.models.gpt import GPT, GPTConfig
from hpogrow.models.mlp import ResidualMLP, ResidualMLPConfig

__all__ = ["GPT", "GPTConfig", "ResidualMLP", "ResidualMLPConfig"]
