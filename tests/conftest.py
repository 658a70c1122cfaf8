from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from hpogrow.tasks import FourierTask, LanguageTask

POSTGRES_BIN_FOLDERS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), reverse=True)
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


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PostgresServer:
    """A throwaway PostgreSQL server on a loopback port, its data in a temporary folder.

    The server refuses to run as root: as root every server command runs as the ``postgres``
    user (``runuser``), who owns the folder; otherwise as the current user. Trust authentication,
    no fsync: for tests only.
    """

    def __init__(self, bin_folder: Path) -> None:
        self.bin_folder = bin_folder
        self.folder = Path(tempfile.mkdtemp(prefix="hpg-pg-", dir="/tmp"))  # short: socket paths have a length limit
        self.data = self.folder / "data"
        self.port = free_port()
        self.user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name

    def _command(self, program: str, *args: str) -> list[str]:
        command = [str(self.bin_folder / program), *args]
        return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command

    def start(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        subprocess.run(self._command("initdb", "-D", str(self.data), "-A", "trust", "-U", self.user, "--no-sync"),
                       check=True, capture_output=True, text=True)
        options = (f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        subprocess.run(self._command("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.folder / "server.log"),
                                     "-w", "-t", "60", "start"), check=True, capture_output=True, text=True)

    def stop(self) -> None:
        if self.data.exists():
            subprocess.run(self._command("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop"),
                           capture_output=True, text=True)
        shutil.rmtree(self.folder, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new empty database; its URL."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the test session (stopped and deleted at the end, even on failure).

    Skips where no PostgreSQL server binaries exist, unless ``HPOGROW_REQUIRE_POSTGRESQL`` is set.
    """
    usable = [folder for folder in POSTGRES_BIN_FOLDERS if (folder / "initdb").exists() and (folder / "pg_ctl").exists()]
    problem = None
    if not usable:
        problem = "no PostgreSQL server binaries (initdb, pg_ctl) under /usr/lib/postgresql/*/bin; install postgresql"
    elif os.geteuid() == 0 and not _user_exists("postgres"):
        problem = "running as root, and there is no 'postgres' user to run the PostgreSQL server as"
    if problem is not None:
        if os.environ.get(REQUIRE_POSTGRESQL):
            pytest.fail(f"{problem} ({REQUIRE_POSTGRESQL} is set)")
        pytest.skip(problem)
    server = PostgresServer(usable[0])
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


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True
