"""Data for the language task: text corpora, token files, the synthetic language, and the
accounting that keeps a command from reading a training token twice.

- :func:`load_corpus` opens what ``--data`` names (:mod:`hpogrow.data.corpus`);
- :class:`WindowStream` reads a split as windows in a fixed order (:mod:`hpogrow.data.windows`);
- :class:`SyntheticLanguage` generates the built-in language and its entropy floor
  (:mod:`hpogrow.data.synthetic`);
- :func:`token_budget` and :func:`check_token_supply` do the accounting (:mod:`hpogrow.data.supply`).
"""

from __future__ import annotations

from hpogrow.data.corpus import Corpus, data_kind, load_corpus, vocabulary_size
from hpogrow.data.supply import TokenBudget, TokenSupply, check_token_supply, token_budget
from hpogrow.data.synthetic import SyntheticLanguage, SyntheticLanguageConfig
from hpogrow.data.windows import WindowReader, WindowStream

__all__ = ["Corpus", "SyntheticLanguage", "SyntheticLanguageConfig", "TokenBudget", "TokenSupply", "WindowReader",
           "WindowStream", "check_token_supply", "data_kind", "load_corpus", "token_budget", "vocabulary_size"]
