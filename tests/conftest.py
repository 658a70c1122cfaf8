from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import torch

from hpogrow.tasks import FourierTask, LanguageTask
from tests.postgres_server import PostgresServer, free_port, server_problem, usable_bin_folders  # noqa: F401 (tests import free_port from here)

REQUIRE_POSTGRESQL = "HPOGROW_REQUIRE_POSTGRESQL"
"""Set (as ``.ci/run`` does) to make a missing PostgreSQL server a test failure instead of a skip."""


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """One torch thread: the test models are tiny, and on a busy 2-core machine two threads per
    process spin against each other (steps measured 8–100× slower); also deterministic."""
    torch.set_num_threads(1)
    yield


@pytest.fixture
def mlp_task() -> FourierTask:
    """The residual MLP on a cheap Fourier target (256 modes)."""
    return FourierTask(depth=2, modes=256, eval_examples=512)


@pytest.fixture
def lm_task() -> LanguageTask:
    """A tiny GPT (head size 8, one block, 16-token context) on the standard-library corpus."""
    return LanguageTask(depth=1, head_size=8, seq_len=16, eval_tokens=512)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the test session (stopped and deleted at the end, even on failure).

    Skips where no PostgreSQL server binaries exist, unless ``HPOGROW_REQUIRE_POSTGRESQL`` is set.
    """
    problem = server_problem()
    if problem is not None:
        if os.environ.get(REQUIRE_POSTGRESQL):
            pytest.fail(f"{problem} ({REQUIRE_POSTGRESQL} is set)")
        pytest.skip(problem)
    server = PostgresServer(usable_bin_folders()[0])
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer, request) -> str:
    """A fresh database on the session's server, named after the test."""
    name = "t_" + "".join(c if c.isalnum() else "_" for c in request.node.name.lower())[:50] + f"_{free_port()}"
    return postgres_server.create_database(name)
