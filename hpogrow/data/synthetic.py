"""A synthetic language generated from a seed: unbounded, deterministic by position, and with a
known entropy floor (``--data synthetic`` or ``--data synthetic:SEED``).

The language is a hidden Markov model whose hidden state is a pair of chains, a *topic* and a
*grammar state*, like the topics and parts of speech of a natural language:

- the topic (one of ``topics``) is drawn afresh with probability ``topic_switch`` at each token
  and otherwise kept, so a topic lasts about ``1 / topic_switch`` tokens and can only be
  inferred from many of them;
- the grammar state (one of ``grammar_states``) follows a sparse random Markov chain (each state
  has ``successors`` possible next states, Dirichlet-weighted);
- each token is drawn from the emission distribution of (topic, grammar state): peaked Dirichlet
  weights over the ``class_size`` tokens of the grammar state's word class. Word classes are
  random subsets of the vocabulary drawn with Zipfian weights, so frequent tokens belong to many
  classes and a single token does not reveal the state.

Every probability is a multiple of ``1 / RESOLUTION`` (the tables are integer counts), so each
draw is one table lookup with a 12-bit slice of a counter-based hash of ``(seed, stream, window,
position)`` (splitmix64's mixer; four slices per token: topic switch, fresh topic, grammar step,
token). Window ``i`` of a stream is therefore a function of the seed and ``i`` alone: windows
can be drawn in any order, on any process, and the validation stream (another key) is
independent of the training stream. Generation is vectorised over the windows of a batch; only
the grammar chain steps through positions, one table lookup per step.

Because the generating process is known exactly, the Bayes-optimal loss of any window follows
from the forward algorithm (:meth:`SyntheticLanguage.bayes_loss`): the *entropy floor* that no
model can beat, recorded with every run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from hpogrow.data.windows import WindowReader

RESOLUTION_BITS = 12
RESOLUTION = 1 << RESOLUTION_BITS
"""Every probability of the language is a multiple of 1/RESOLUTION."""
_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_STREAMS = {"train": 1, "validation": 2}


@dataclass(frozen=True)
class SyntheticLanguageConfig:
    """Shape of the synthetic language; the seed fixes every table and every token."""

    seed: int = 0
    """Seed of the language's tables and of its token streams."""
    vocab_size: int = 256
    """Tokens of the vocabulary (256: the byte-level GPT's readout fits it unchanged)."""
    topics: int = 16
    """Values of the slow hidden chain."""
    grammar_states: int = 32
    """Values of the fast hidden chain; ``topics × grammar_states`` hidden states in all."""
    successors: int = 4
    """Possible next grammar states of each grammar state."""
    class_size: int = 24
    """Tokens in each grammar state's word class."""
    topic_switch: float = 1 / 64
    """Probability per token that the topic is drawn afresh (rounded to a multiple of 1/RESOLUTION)."""
    concentration: float = 0.1
    """Dirichlet concentration of each topic's weights over a word class (lower: peakier)."""
    zipf_exponent: float = 1.0
    """Word classes draw tokens with weights ``rank^-zipf_exponent``."""

    def __post_init__(self) -> None:
        if self.vocab_size < 2 or self.topics < 1 or self.grammar_states < 1:
            raise ValueError("vocab_size ≥ 2, topics ≥ 1 and grammar_states ≥ 1 are needed")
        if not 1 <= self.successors <= self.grammar_states:
            raise ValueError(f"successors must be in 1..grammar_states, got {self.successors}")
        if not 1 <= self.class_size <= self.vocab_size:
            raise ValueError(f"class_size must be in 1..vocab_size, got {self.class_size}")
        if not 0 <= self.topic_switch <= 1 or not self.concentration > 0:
            raise ValueError("topic_switch must be in [0, 1] and concentration positive")

    @property
    def hidden_states(self) -> int:
        return self.topics * self.grammar_states


def _mix(values: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, elementwise on a uint64 array (wraps modulo 2^64)."""
    values = (values ^ (values >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    values = (values ^ (values >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return values ^ (values >> np.uint64(31))


def _random_bits(seed: int, stream: str, windows: np.ndarray, length: int) -> np.ndarray:
    """64 random bits for each (window, position) of a stream: ``(B,) -> (B, length)`` uint64."""
    key = np.uint64((seed * _GOLDEN + _STREAMS[stream] * 0xD1B54A32D192ED03) & _MASK)
    per_window = _mix(_mix(windows.astype(np.uint64) ^ key) + np.uint64(_GOLDEN))  # (B,)
    positions = np.arange(length, dtype=np.uint64) * np.uint64(0x8CB92BA72F3D8DD7)  # (L,)
    return _mix(per_window[:, None] + positions[None, :])


def _field(bits: np.ndarray, index: int) -> np.ndarray:
    """The ``index``-th 12-bit slice of each word: a uniform integer below RESOLUTION."""
    return ((bits >> np.uint64(index * RESOLUTION_BITS)) & np.uint64(RESOLUTION - 1)).astype(np.int64)


def _counts(probabilities: np.ndarray, minimum: int = 0) -> np.ndarray:
    """Each row of ``probabilities`` as integer counts summing to RESOLUTION, at least
    ``minimum`` each (largest remainders get the rounding): ``(R, m) -> (R, m)`` int64."""
    spare = RESOLUTION - minimum * probabilities.shape[1]
    exact = probabilities / probabilities.sum(axis=1, keepdims=True) * spare
    counts = np.floor(exact).astype(np.int64)
    short = spare - counts.sum(axis=1)  # (R,)
    order = np.argsort(counts - exact, axis=1)  # largest remainder first
    rank = np.argsort(order, axis=1)
    return counts + (rank < short[:, None]) + minimum


def _lookup_table(counts: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Row ``r`` holds ``values[r, j]`` ``counts[r, j]`` times: ``(R, m) -> (R, RESOLUTION)``, so a
    uniform 12-bit column draws ``values[r, j]`` with probability ``counts[r, j] / RESOLUTION``."""
    return np.stack([np.repeat(row_values, row_counts) for row_values, row_counts in zip(values, counts)])


@dataclass
class SyntheticLanguage:
    """The language's tables, drawn from ``config.seed``; windows and Bayes losses from them."""

    config: SyntheticLanguageConfig
    topic_switch: float = field(init=False)
    """The switch probability actually used (a multiple of 1/RESOLUTION)."""
    topic_start: np.ndarray = field(init=False, repr=False)
    """(K,) distribution of a freshly drawn topic (uniform, rounded to multiples of 1/RESOLUTION)."""
    grammar_transition: np.ndarray = field(init=False, repr=False)
    """(G, G) transition matrix of the grammar chain."""
    grammar_start: np.ndarray = field(init=False, repr=False)
    """(G,) distribution of the first grammar state (the chain's stationary one, rounded)."""
    emission: np.ndarray = field(init=False, repr=False)
    """(K, G, V) emission probabilities of each (topic, grammar state)."""

    def __post_init__(self) -> None:
        config = self.config
        rng = np.random.default_rng([config.seed, 0x5EED])
        topics, states, vocab = config.topics, config.grammar_states, config.vocab_size
        self._switch_count = round(config.topic_switch * RESOLUTION)
        self.topic_switch = self._switch_count / RESOLUTION
        topic_counts = _counts(np.ones((1, topics)))  # (1, K)
        self.topic_start = topic_counts[0] / RESOLUTION
        self._topic_table = _lookup_table(topic_counts, np.arange(topics)[None, :])[0]  # (RESOLUTION,)
        # 1. grammar chain: a ring through every state (irreducible) plus random successors
        successors = np.empty((states, config.successors), dtype=np.int64)
        for state in range(states):
            others = rng.permutation(np.delete(np.arange(states), (state + 1) % states))
            successors[state] = np.concatenate([[(state + 1) % states], others[: config.successors - 1]])
        counts = _counts(rng.dirichlet(np.ones(config.successors), size=states), minimum=1)  # (G, S)
        self.grammar_transition = np.zeros((states, states))
        np.put_along_axis(self.grammar_transition, successors, counts / RESOLUTION, axis=1)
        self._grammar_table = _lookup_table(counts, successors)  # (G, RESOLUTION)
        start_counts = _counts(_stationary(self.grammar_transition)[None, :])  # (1, G)
        self.grammar_start = start_counts[0] / RESOLUTION
        self._start_table = _lookup_table(start_counts, np.arange(states)[None, :])[0]  # (RESOLUTION,)
        # 2. word classes: Zipf-weighted subsets of the vocabulary, one per grammar state
        zipf = np.arange(1, vocab + 1, dtype=np.float64) ** -config.zipf_exponent
        classes = np.stack([rng.choice(vocab, config.class_size, replace=False, p=zipf / zipf.sum())
                            for _ in range(states)])  # (G, C)
        weights = rng.dirichlet(np.full(config.class_size, config.concentration), size=topics * states)
        counts = _counts(weights)  # (K·G, C)
        members = np.tile(classes, (topics, 1))  # (K·G, C): row k·G + g holds class g
        self._emission_table = _lookup_table(counts, members)  # (K·G, RESOLUTION)
        self.emission = np.zeros((topics * states, vocab))
        np.put_along_axis(self.emission, members, counts / RESOLUTION, axis=1)
        self.emission = self.emission.reshape(topics, states, vocab)

    def windows(self, stream: str, indices: np.ndarray, length: int) -> np.ndarray:
        """Tokens of windows ``indices`` of ``stream`` (``train`` or ``validation``), each
        ``length`` tokens long: ``(B,) -> (B, length)`` int64."""
        config = self.config
        bits = _random_bits(config.seed, stream, np.asarray(indices, dtype=np.int64), length)  # (B, L)
        # 1. topics: a fresh one at position 0 and wherever a switch fires, held in between
        switches = _field(bits, 0) < self._switch_count
        switches[:, 0] = True
        last_switch = np.maximum.accumulate(np.where(switches, np.arange(length), 0), axis=1)
        topic = np.take_along_axis(self._topic_table[_field(bits, 3)], last_switch, axis=1)  # (B, L)
        # 2. grammar states: the Markov chain, one lookup per position
        draws = _field(bits, 1)  # (B, L)
        grammar = np.empty_like(draws)
        grammar[:, 0] = self._start_table[draws[:, 0]]
        for position in range(1, length):
            grammar[:, position] = self._grammar_table[grammar[:, position - 1], draws[:, position]]
        # 3. tokens from the emission of (topic, grammar state)
        return self._emission_table[topic * config.grammar_states + grammar, _field(bits, 2)]

    def bayes_loss(self, tokens: np.ndarray) -> np.ndarray:
        """``-log p(x_t | x_0 … x_{t-1})`` under the true process, for t = 1 … L-1, by the forward
        algorithm: the loss of the Bayes-optimal predictor. ``(B, L) -> (B, L-1)`` nats."""
        switch, fresh = self.topic_switch, self.topic_start[:, None]  # fresh: (K, 1)
        emission = self.emission.transpose(2, 0, 1)  # (V, K, G)
        belief = np.broadcast_to(fresh * self.grammar_start, (tokens.shape[0], *self.emission.shape[:2])).copy()
        losses = np.empty((tokens.shape[0], tokens.shape[1] - 1))
        for position in range(tokens.shape[1]):
            joint = belief * emission[tokens[:, position]]  # (B, K, G): P(state, x_t | x_<t)
            probability = joint.sum(axis=(1, 2))  # (B,)
            if position:
                losses[:, position - 1] = -np.log(probability)
            posterior = joint / probability[:, None, None]
            topic_mixed = (1 - switch) * posterior + switch * fresh * posterior.sum(axis=1, keepdims=True)
            belief = topic_mixed @ self.grammar_transition  # (B, K, G)
        return losses

    def ngram_entropies(self) -> dict[str, float]:
        """Exact entropies in nats, at the start of a window: of the first token (``unigram``, the
        best loss without context) and of the second given the first (``bigram``, the best a
        table of token pairs can do there)."""
        switch, fresh = self.topic_switch, self.topic_start[:, None, None]  # fresh: (K, 1, 1)
        first = fresh * self.grammar_start[None, :, None] * self.emission  # (K, G, V): P(state, x)
        unigram = first.sum(axis=(0, 1))
        mixed = (1 - switch) * first + switch * fresh * first.sum(axis=0, keepdims=True)
        stepped = np.einsum("kgv,gh->khv", mixed, self.grammar_transition)  # (K, G', V): P(state', x)
        pair = np.einsum("khv,khw->vw", stepped, self.emission)  # (V, V'): P(x, x')

        def entropy(probabilities: np.ndarray) -> float:
            positive = probabilities[probabilities > 0]
            return float(-np.sum(positive * np.log(positive)))

        return {"unigram": entropy(unigram), "bigram": entropy(pair) - entropy(unigram)}


def _stationary(transition: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eig(transition.T)
    vector = np.abs(np.real(vectors[:, np.argmin(np.abs(values - 1))]))
    return vector / vector.sum()


class SyntheticSplit(WindowReader):
    """The ``train`` or ``validation`` stream of a synthetic language: it never runs out."""

    def __init__(self, language: SyntheticLanguage, stream: str) -> None:
        self.language, self.stream = language, stream

    def window_count(self, seq_len: int) -> None:
        return None

    def read(self, indices: np.ndarray, seq_len: int) -> np.ndarray:
        return self.language.windows(self.stream, indices, seq_len + 1)


def synthetic_corpus(config: SyntheticLanguageConfig) -> tuple[SyntheticSplit, SyntheticSplit, dict]:
    """Train and validation streams of the language ``config`` describes, and its summary
    (the entropy floor depends on the evaluation windows and is added by the task)."""
    language = SyntheticLanguage(config)
    entropies = language.ngram_entropies()
    summary = {"source": f"synthetic:{config.seed}", "kind": "synthetic", "vocab_size": config.vocab_size,
               "train_tokens": None, "validation_tokens": None, "language": asdict(config),
               "hidden_states": config.hidden_states, "unigram_entropy": round(entropies["unigram"], 4),
               "bigram_entropy": round(entropies["bigram"], 4)}
    return SyntheticSplit(language, "train"), SyntheticSplit(language, "validation"), summary
