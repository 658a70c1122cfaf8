"""Data (hpogrow/data/): the standard-library corpus, text, token files, the synthetic language,
the window order and the token accounting."""

from __future__ import annotations

import itertools
import math
import pickle

import numpy as np
import pytest
import torch

from hpogrow.data import load_corpus, token_budget, check_token_supply
from hpogrow.data.synthetic import SyntheticLanguage, SyntheticLanguageConfig
from hpogrow.data.token_files import FINGERPRINT_BLOCK_BYTES, FINGERPRINT_BLOCKS, TokenFile, file_identity
from hpogrow.data.windows import TokenArray, WindowStream
from hpogrow.errors import UsageError
from hpogrow.parametrize import make_base_shapes
from hpogrow.tasks import FourierTask, LanguageTask, task_from_spec

CPU = torch.device("cpu")


def _bin_folder(path, train: np.ndarray, validation: np.ndarray, vocab_size: int | None = None):
    path.mkdir()
    train.tofile(path / "train.bin")
    validation.tofile(path / "val.bin")
    if vocab_size is not None:
        (path / "meta.pkl").write_bytes(pickle.dumps({"vocab_size": vocab_size}))
    return str(path)


def test_stdlib_corpus_is_deterministic_and_split():
    corpus = load_corpus(None)
    summary = corpus.summary
    assert summary["source"].startswith("cpython-stdlib:") and len(summary["sha256"]) == 64
    assert summary["python_version"] and summary["train_tokens"] > 1_000_000
    assert 0.01 < summary["validation_tokens"] / summary["train_tokens"] < 0.15
    load_corpus.cache_clear()
    again = load_corpus(None)
    assert again.summary["sha256"] == summary["sha256"]
    assert np.array_equal(again.train.tokens[:1000], corpus.train.tokens[:1000])


def test_text_folder_and_single_text_file(tmp_path):
    (tmp_path / "text").mkdir()
    for index in range(40):
        (tmp_path / "text" / f"doc{index}.txt").write_text(f"document {index} " * 50)
    corpus = load_corpus(str(tmp_path / "text"))
    assert corpus.summary["files"] == 40 and len(corpus.validation) > 0
    assert bytes(corpus.train.tokens[:8]) == b"document"

    single = tmp_path / "one.txt"
    single.write_bytes(bytes(range(256)) * 40)  # 10,240 bytes
    corpus = load_corpus(str(single))
    assert isinstance(corpus.train, TokenFile)  # memory-mapped, not read into memory
    assert (corpus.summary["train_tokens"], corpus.summary["validation_tokens"]) == (9728, 512)
    windows = corpus.validation.read(np.array([0, 1]), seq_len=4)
    assert windows.tolist() == [[0, 1, 2, 3, 4], [4, 5, 6, 7, 8]]  # the held-out last 5% (9728 = 38·256)


def test_token_folder_is_memory_mapped_with_vocabulary_from_meta_or_flag(tmp_path):
    train, validation = np.arange(5000, dtype=np.uint16) % 300, np.arange(300, 800, dtype=np.uint16) % 300
    folder = _bin_folder(tmp_path / "meta", train, validation, vocab_size=300)
    corpus = load_corpus(folder)
    assert isinstance(corpus.train, TokenFile) and corpus.summary["vocab_from"] == "meta.pkl"
    assert corpus.summary["vocab_size"] == 300 and corpus.summary["train_tokens"] == 5000
    assert corpus.train.read(np.array([2]), seq_len=10).tolist() == [list(range(20, 31))]
    task = LanguageTask(depth=1, head_size=8, seq_len=16, data=folder)
    assert task.build_model(16).readout.out_features == 300
    assert task_from_spec(task.describe()).vocab_size == 300  # rebuilt from a checkpoint's spec

    bare = _bin_folder(tmp_path / "bare", train, validation)
    assert LanguageTask(data=bare).vocab_size == 50257  # no meta.pkl: GPT-2's, as nanoGPT assumes
    assert LanguageTask(data=bare, vocab_size=320).vocab_size == 320
    with pytest.raises(UsageError, match="does not fit uint16 tokens; pass --dtype uint32"):
        LanguageTask(data=bare, vocab_size=70_000)
    with pytest.raises(UsageError, match="holds token 299, outside the vocabulary of 100"):
        LanguageTask(depth=1, head_size=8, seq_len=16, data=bare, vocab_size=100).batch(0, 64, CPU)

    wide = _bin_folder(tmp_path / "wide", np.arange(70_000, 75_000, dtype=np.uint32), np.arange(500, dtype=np.uint32))
    task = LanguageTask(depth=1, head_size=8, seq_len=16, data=wide, vocab_size=75_000, dtype="uint32")
    inputs, targets = task.batch(0, 4, CPU)
    assert inputs.min() >= 70_000 and torch.equal(inputs[:, 1:], targets[:, :-1])
    with pytest.raises(UsageError, match="5 bytes, not a whole number of uint16 tokens"):  # 5 bytes
        (tmp_path / "wide" / "train.bin").write_bytes(b"12345")
        load_corpus(wide, 60_000, "uint16")

    (tmp_path / "meta" / "val.bin").unlink()
    load_corpus.cache_clear()
    with pytest.raises(UsageError, match="val.bin is missing"):
        load_corpus(folder)


def test_fingerprint_samples_large_files_and_hashes_small_ones_whole(tmp_path):
    small = tmp_path / "small.bin"
    small.write_bytes(b"x" * 1000)
    assert set(file_identity([small])) == {"sha256"}
    large = tmp_path / "large.bin"
    size = FINGERPRINT_BLOCKS * FINGERPRINT_BLOCK_BYTES * 3
    large.write_bytes(bytes(size))
    before = file_identity([large])
    assert set(before) == {"fingerprint", "fingerprint_method"}
    with large.open("r+b") as handle:  # the last block is always sampled
        handle.seek(size - 1)
        handle.write(b"\1")
    assert file_identity([large])["fingerprint"] != before["fingerprint"]
    with large.open("ab") as handle:
        handle.write(b"\0")
    assert len({file_identity([large])["fingerprint"], before["fingerprint"]}) == 2


def test_loading_data_inside_a_meta_device_block_still_gives_cpu_batches(tmp_path):
    """The cause of the --data crash: a corpus first opened inside torch.device("meta")."""
    path = tmp_path / "corpus.txt"
    path.write_bytes(bytes(range(256)) * 100)
    for data in (str(path), "synthetic:3"):
        task = LanguageTask(depth=1, head_size=8, seq_len=16, data=data, eval_tokens=256)
        with torch.device("meta"):
            make_base_shapes(task, 16)
            task.data_summary()  # opens the corpus here, where every new tensor would be meta
        inputs, targets = task.batch(0, 4, CPU)
        assert inputs.device.type == "cpu" and inputs.shape == (4, 16)
        assert task.eval_batches(CPU)[0][0].device.type == "cpu"


def test_window_stream_visits_every_window_once_per_pass():
    stream = WindowStream(TokenArray(np.arange(1001)), seq_len=10, seed=3)
    starts = stream.windows(0, stream.n_windows)[:, 0].tolist()
    assert sorted(starts) == list(range(0, 1000, 10))[: stream.n_windows]
    assert starts != sorted(starts)  # shuffled order
    windows = stream.windows(5, 3)
    assert windows.shape == (3, 11) and torch.equal(windows[:, 1:] - windows[:, :-1], torch.ones(3, 10, dtype=torch.long))
    # continuing from a position gives exactly what a single longer read gives
    assert torch.equal(stream.windows(0, 8)[4:], stream.windows(4, 4))
    assert torch.equal(stream.windows(stream.n_windows, 2), stream.windows(0, 2))  # a second pass repeats


def test_lm_batches_continue_without_repeating(lm_task):
    first = lm_task.batch(0, 8, CPU)[0]
    second = lm_task.batch(8, 8, CPU)[0]
    inputs, targets = lm_task.batch(0, 16, CPU)
    assert torch.equal(torch.cat([first, second]), inputs)
    assert torch.equal(inputs[:, 1:], targets[:, :-1])
    assert lm_task.data_passes(lm_task.training_windows()) == 1.0


def _tiny_language() -> SyntheticLanguage:
    return SyntheticLanguage(SyntheticLanguageConfig(seed=5, vocab_size=4, topics=3, grammar_states=3, successors=2,
                                                     class_size=3, topic_switch=0.2, concentration=1.0))


def _exact_probability(language: SyntheticLanguage, tokens: tuple[int, ...]) -> float:
    """P(tokens) summed over every hidden path: the definition, by enumeration."""
    config = language.config
    topic_step = (1 - language.topic_switch) * np.eye(config.topics) + language.topic_switch * language.topic_start
    states = list(itertools.product(range(config.topics), range(config.grammar_states)))
    total = 0.0
    for path in itertools.product(states, repeat=len(tokens)):
        (topic, grammar) = path[0]
        probability = (language.topic_start[topic] * language.grammar_start[grammar]
                       * language.emission[topic, grammar, tokens[0]])
        for (previous, current, token) in zip(path, path[1:], tokens[1:]):
            probability *= (topic_step[previous[0], current[0]] * language.grammar_transition[previous[1], current[1]]
                            * language.emission[current[0], current[1], token])
        total += probability
    return total


def test_synthetic_bayes_loss_is_exact_and_the_generator_samples_the_same_process():
    language = _tiny_language()
    sequences = list(itertools.product(range(4), repeat=3))
    exact = np.array([_exact_probability(language, tokens) for tokens in sequences])
    assert exact.sum() == pytest.approx(1.0)
    # the forward algorithm's -log p(x_t | x_<t) against the enumeration
    possible = [index for index in range(len(sequences)) if exact[index] > 0]
    losses = language.bayes_loss(np.array([sequences[index] for index in possible]))  # (N, 2)
    prefix = {tokens[:1]: sum(exact[i] for i, s in enumerate(sequences) if s[:1] == tokens[:1]) for tokens in sequences}
    two = {tokens[:2]: sum(exact[i] for i, s in enumerate(sequences) if s[:2] == tokens[:2]) for tokens in sequences}
    assert len(possible) > 20
    for row, index in enumerate(possible):
        tokens = sequences[index]
        assert losses[row, 0] == pytest.approx(-math.log(two[tokens[:2]] / prefix[tokens[:1]]), rel=1e-9)
        assert losses[row, 1] == pytest.approx(-math.log(exact[index] / two[tokens[:2]]), rel=1e-9)
    # generated windows follow the same distribution (total variation over the 64 outcomes)
    windows = language.windows("train", np.arange(200_000), 3)
    counts = np.bincount(windows @ np.array([16, 4, 1]), minlength=64) / len(windows)
    assert 0.5 * np.abs(counts - exact).sum() < 0.01
    unigram = np.bincount(windows[:, 0], minlength=4) / len(windows)
    entropy = -np.sum(unigram[unigram > 0] * np.log(unigram[unigram > 0]))
    assert entropy == pytest.approx(language.ngram_entropies()["unigram"], abs=0.01)


def test_synthetic_windows_are_a_function_of_seed_stream_and_index():
    language = SyntheticLanguage(SyntheticLanguageConfig(seed=1))
    together = language.windows("train", np.array([7, 8, 9]), 33)
    assert np.array_equal(language.windows("train", np.array([9, 7]), 33), together[[2, 0]])
    assert together.min() >= 0 and together.max() < 256
    assert not np.array_equal(language.windows("validation", np.array([7]), 33), together[:1])
    other = SyntheticLanguage(SyntheticLanguageConfig(seed=2)).windows("train", np.array([7]), 33)
    assert not np.array_equal(other, together[:1])
    task = LanguageTask(depth=1, head_size=8, seq_len=16, data="synthetic:1", eval_tokens=256)
    assert task.training_windows() is None and task.data_passes(10**12) is None
    floor = task.data_summary()["entropy_floor"]
    assert floor["interval_95"][0] < floor["value"] < floor["interval_95"][1]
    summary = task.data_summary()
    assert floor["value"] < summary["bigram_entropy"] < summary["unigram_entropy"] < math.log(256)


def test_token_budget_reads_base_then_one_fresh_segment_per_seed():
    budget = token_budget(1000, [500], 2000, seeds=3, tokens_per_example=10, batch_sizes=[4])
    # base: ceil(100/4)·4 = 100 examples; pair: 52 (stage, rounded up to whole batches) + 200
    assert (budget.base_examples, budget.pair_examples) == (100, 252)
    assert [budget.segment(k) for k in range(3)] == [(100, 352), (352, 604), (604, 856)]
    assert budget.end == 856 and budget.tokens == 8560
    worst = token_budget(1000, [], 1000, tokens_per_example=10, batch_sizes=[8, 16, 32])
    assert worst.base_examples == 128  # 100 examples at batch 32 read 4 whole steps
    assert token_budget(640, [], 0, batch_sizes=[8], tokens_per_example=10, start=64).segment(0) == (128, 128)


def test_supply_refuses_repeats_with_the_numbers_and_the_ways_out():
    budget = token_budget(1000, [], 2000, tokens_per_example=10, batch_sizes=[4])
    assert not check_token_supply(budget, 300).repeats
    with pytest.raises(UsageError) as refusal:
        check_token_supply(budget, 150, source="text:/x", budget_flag=("--tokens-per-param", 20.0))
    message = str(refusal.value)
    assert "reads 3,000 training tokens but text:/x holds 1,500 (2.00 passes)" in message
    assert "--tokens-per-param 10 or lower" in message and "--data synthetic" in message and "--allow-repeat" in message
    assert "\n" not in message
    allowed = check_token_supply(budget, 150, allow_repeat=True)
    assert allowed.repeats and allowed.passes == 2.0 and "TOKENS REPEAT" in allowed.describe()
    unchecked = check_token_supply(budget, None)  # generated data: nothing to repeat
    assert unchecked.passes == 0.0 and not unchecked.repeats and "not checked" in unchecked.describe()


def test_fourier_target_matches_the_paper_construction():
    task = FourierTask(modes=2000, seed=1)
    target = task.target
    assert target.frequencies.shape == (2000, 8)
    assert torch.equal(target.frequencies, target.frequencies.round())
    assert target.weights.norm().item() == pytest.approx(1.0)
    assert set(target.phases.unique().tolist()) <= {0.0, np.pi / 2}
    x, y = task.batch(0, 4096, CPU)
    assert x.min() >= -0.5 and x.max() <= 0.5
    assert y.pow(2).mean().item() == pytest.approx(1.0, rel=0.15)  # unit-norm coefficients: E[y²] = 1
    assert not torch.equal(task.batch(1, 4, CPU)[0], task.batch(2, 4, CPU)[0])
