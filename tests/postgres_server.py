"""A throwaway PostgreSQL server on a loopback port, for the tests (``postgres_server`` in
conftest) and for ``bench/drivers.py``: PostgreSQL 15 as these machines have it, ``initdb`` and
``pg_ctl`` from its bin folder."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

POSTGRES_BIN_FOLDERS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), reverse=True)


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


def server_problem() -> str | None:
    """Why no server can be started here (``None``: one can)."""
    if not usable_bin_folders():
        return "no PostgreSQL server binaries (initdb, pg_ctl) under /usr/lib/postgresql/*/bin; install postgresql"
    if os.geteuid() == 0 and not _user_exists("postgres"):
        return "running as root, and there is no 'postgres' user to run the PostgreSQL server as"
    return None


def usable_bin_folders() -> list[Path]:
    """PostgreSQL bin folders with ``initdb`` and ``pg_ctl``, newest version first."""
    return [folder for folder in POSTGRES_BIN_FOLDERS if (folder / "initdb").exists() and (folder / "pg_ctl").exists()]


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True
