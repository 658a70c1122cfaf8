"""The synthetic language (hpogrow/data/synthetic.py): deterministic by seed and position, with a
known entropy floor."""

from __future__ import annotations

import numpy as np
import pytest

from hpogrow.data.synthetic import RESOLUTION, SyntheticLanguage, SyntheticLanguageConfig, synthetic_corpus

SMALL = SyntheticLanguageConfig(seed=3, vocab_size=32, topics=2, grammar_states=4, successors=2, class_size=6,
                                topic_switch=1 / 16)


def test_windows_are_a_function_of_seed_stream_and_index_alone():
    language = SyntheticLanguage(SMALL)
    batch = language.windows("train", np.array([0, 5, 9]), 24)
    assert batch.shape == (3, 24) and batch.dtype == np.int64
    assert np.array_equal(language.windows("train", np.array([5]), 24)[0], batch[1])  # any order, any batch
    assert np.array_equal(SyntheticLanguage(SMALL).windows("train", np.array([0, 5, 9]), 24), batch)  # any process
    assert not np.array_equal(language.windows("validation", np.array([0, 5, 9]), 24), batch)
    other = SyntheticLanguage(SyntheticLanguageConfig(**{**SMALL.__dict__, "seed": 4}))
    assert not np.array_equal(other.windows("train", np.array([0, 5, 9]), 24), batch)
    assert batch.min() >= 0 and batch.max() < SMALL.vocab_size


def test_the_tables_are_distributions_on_the_resolution_grid():
    language = SyntheticLanguage(SMALL)
    assert np.allclose(language.grammar_transition.sum(axis=1), 1) and np.allclose(language.emission.sum(axis=2), 1)
    assert np.allclose(language.emission * RESOLUTION, np.round(language.emission * RESOLUTION))
    assert language.topic_switch == 256 / RESOLUTION
    assert ((language.emission > 0).sum(axis=2) <= SMALL.class_size).all()  # a word class per grammar state


def test_the_bayes_loss_is_the_floor_below_the_ngram_entropies():
    language = SyntheticLanguage(SMALL)
    tokens = language.windows("validation", np.arange(64), 32)
    losses = language.bayes_loss(tokens)
    assert losses.shape == (64, 31) and np.isfinite(losses).all() and (losses >= 0).all()
    entropies = language.ngram_entropies()
    assert 0 < entropies["bigram"] < entropies["unigram"] < np.log(SMALL.vocab_size)
    assert losses[:, 8:].mean() < entropies["bigram"]  # context beyond one token helps


def test_the_corpus_never_runs_out_and_summarises_the_language():
    train, validation, summary = synthetic_corpus(SMALL)
    assert train.window_count(16) is None and validation.window_count(16) is None
    assert train.read(np.array([2]), 7).shape == (1, 8)
    assert summary["source"] == "synthetic:3" and summary["hidden_states"] == 8 and summary["vocab_size"] == 32
    assert summary["bigram_entropy"] < summary["unigram_entropy"]


@pytest.mark.parametrize("bad", [{"vocab_size": 1}, {"successors": 5}, {"class_size": 33}, {"topic_switch": 1.5},
                                 {"concentration": 0.0}])
def test_an_impossible_shape_is_refused(bad):
    with pytest.raises(ValueError):
        SyntheticLanguageConfig(**{**SMALL.__dict__, **bad})
