"""The μP GPT (hpogrow/models/gpt.py): shapes, causality, μP initialisation and width multipliers."""

from __future__ import annotations

import mup
import pytest
import torch

from hpogrow.models.gpt import GPT, GPTConfig


def _mup_gpt(width: int, base_width: int = 16, seed: int = 0) -> GPT:
    config = GPTConfig(width=width, depth=2, head_size=8, seq_len=12, vocab_size=32)
    base = GPTConfig(width=base_width, depth=2, head_size=8, seq_len=12, vocab_size=32)
    delta = GPTConfig(width=2 * base_width, depth=2, head_size=8, seq_len=12, vocab_size=32)
    torch.manual_seed(seed)
    model = GPT(config)
    with torch.device("meta"):
        shapes = mup.make_base_shapes(GPT(base), GPT(delta))
    mup.set_base_shapes(model, shapes)
    model.initialize()
    return model


def test_config_rejects_a_width_that_is_not_whole_heads_and_suggests_one():
    with pytest.raises(ValueError, match="multiple of the head size 8.*such as 24"):
        GPTConfig(width=25, head_size=8)
    assert GPTConfig(width=48, head_size=16).n_heads == 3


def test_logits_have_shape_batch_time_vocabulary_and_the_zero_readout_starts_uniform():
    model = _mup_gpt(32)
    idx = torch.randint(0, 32, (3, 12))
    logits = model(idx)  # (B, T, V)
    assert logits.shape == (3, 12, 32)
    # readout is zero-initialised: every token starts at the uniform distribution (loss ln V)
    assert torch.count_nonzero(model.readout.weight) == 0
    assert torch.allclose(logits, torch.zeros_like(logits))
    for block in model.blocks:
        assert torch.count_nonzero(block.attn.query.weight) == 0
        assert torch.count_nonzero(block.attn.key.weight) > 0


def test_attention_is_causal_a_later_token_does_not_change_earlier_logits():
    model = _mup_gpt(32)
    torch.nn.init.normal_(model.readout.weight)  # non-zero so that the logits carry the hidden state
    for block in model.blocks:
        torch.nn.init.normal_(block.attn.query.weight, std=0.3)
    idx = torch.randint(0, 32, (1, 12))
    changed = idx.clone()
    changed[0, 7] = (idx[0, 7] + 1) % 32
    before, after = model(idx), model(changed)
    assert torch.allclose(before[:, :7], after[:, :7], atol=1e-6)
    assert not torch.allclose(before[:, 7:], after[:, 7:])


def test_attention_scale_is_attn_mult_over_head_size_not_its_square_root():
    config = GPTConfig(width=16, depth=1, head_size=8, seq_len=4, vocab_size=8, attn_mult=8.0)
    attention = GPT(config).blocks[0].attn
    x = torch.randn(1, 4, 16)
    q = attention.query(x).view(1, 4, 2, 8).transpose(1, 2)
    k = attention.key(x).view(1, 4, 2, 8).transpose(1, 2)
    v = attention.value(x).view(1, 4, 2, 8).transpose(1, 2)
    scores = (q @ k.transpose(-1, -2)) * (8.0 / 8)  # attn_mult / head_size = 1
    scores = scores.masked_fill(torch.ones(4, 4, dtype=torch.bool).triu(1), float("-inf"))
    expected = attention.proj((scores.softmax(-1) @ v).transpose(1, 2).reshape(1, 4, 16))
    assert torch.allclose(attention(x), expected, atol=1e-5)


def test_a_wider_model_on_the_same_base_has_width_multiplier_width_over_base():
    narrow, wide = _mup_gpt(16), _mup_gpt(64)
    assert narrow.readout.weight.infshape.width_mult() == 1
    assert wide.readout.weight.infshape.width_mult() == 4
    assert wide.blocks[0].mlp.fc.weight.infshape.width_mult() == 4
    # hidden matrices have two infinite dimensions; embeddings are vector-like (the vocabulary is finite)
    assert wide.blocks[0].attn.query.weight.infshape.ninf() == 2
    assert wide.token_embedding.weight.infshape.ninf() == 1
    assert wide.readout.weight.infshape.ninf() == 1


def test_initialize_scales_hidden_matrices_by_fan_in_and_output_projections_by_depth():
    model = _mup_gpt(256, base_width=16)
    fc = model.blocks[0].mlp.fc.weight  # (4W, W): std 1/sqrt(W)
    proj = model.blocks[0].mlp.proj.weight  # (W, 4W): std 1/sqrt(4W) / sqrt(2·depth)
    assert fc.std().item() == pytest.approx(256 ** -0.5, rel=0.05)
    assert proj.std().item() == pytest.approx((4 * 256) ** -0.5 / 2, rel=0.05)
    assert model.token_embedding.weight.std().item() == pytest.approx(1.0, rel=0.05)
    assert torch.equal(model.ln_f.weight, torch.ones(256))
