"""Several drivers on one storage: locks, and knowing whether a driver still lives.

Every lock here belongs to a process and dies with it, so a driver killed at any point (even
with SIGKILL) leaves nothing locked behind:

- SQLite and journal files: ``fcntl.flock`` on files in a ``.locks`` folder beside the storage
  file (on shared storage, as far as its file system honours ``flock``, e.g. NFSv4).
- PostgreSQL: session-level advisory locks on a connection of their own (any host that reaches
  the server).
- Anything else (another RDB, an in-memory study): file locks under ``fallback_dir``; correct for
  drivers on one machine only.

Each driver holds a lock named after itself (``host:pid``) for its whole life; another driver
finds out whether it lives by trying to take that lock. Named locks serialise the moments that
must not interleave: claiming a base trial (count, ask, record the driver) and the target side
(growth and the warmstart/scratch runs, done by one driver only).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import socket
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from pathlib import Path

from hpogrow.storage import JOURNAL_PREFIX

POLL_SECONDS = 0.5


def driver_id() -> str:
    """``host:pid`` of this process, recorded on every trial it runs."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Coordinator(ABC):
    """Locks shared by every driver of one storage."""

    def __init__(self) -> None:
        self.driver = driver_id()

    @abstractmethod
    def try_lock(self, name: str) -> bool:
        """Take the lock ``name`` if it is free; ``True`` when this process now holds it."""

    @abstractmethod
    def unlock(self, name: str) -> None:
        """Release a lock this process holds."""

    @abstractmethod
    def _held_elsewhere(self, name: str) -> bool | None:
        """Whether another process holds ``name`` (``None``: cannot tell)."""

    def close(self) -> None:
        """Release everything (also happens when the process dies)."""

    @contextlib.contextmanager
    def lock(self, name: str, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
        """Hold the lock ``name`` for the block, waiting (``on_wait`` is called once) while
        another driver holds it. Polls, so Ctrl-C interrupts the wait."""
        waited = False
        while not self.try_lock(name):
            if not waited and on_wait is not None:
                on_wait()
            waited = True
            time.sleep(POLL_SECONDS)
        try:
            yield
        finally:
            self.unlock(name)

    def register(self) -> None:
        """Hold this driver's own lock until the process ends: others see it alive."""
        self.try_lock(_driver_lock(self.driver))

    def alive(self, driver: str) -> bool:
        """Whether the driver ``host:pid`` is still running.

        Its own lock answers for any driver that registered; for one that did not (it never
        reached :meth:`register`), a process check on this host, and "alive" for other hosts
        (a trial is never taken from a driver that may still be working on it).
        """
        if driver == self.driver:
            return True
        held = self._held_elsewhere(_driver_lock(driver))
        if held is not None:
            return held
        host, _, pid = driver.partition(":")
        if host != socket.gethostname() or not pid.isdigit():
            return True
        return _process_exists(int(pid))


def _driver_lock(driver: str) -> str:
    return f"driver {driver}"


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class FileCoordinator(Coordinator):
    """``flock`` on one file per lock name in ``folder``."""

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder = folder
        self._held: dict[str, int] = {}

    def _path(self, name: str) -> Path:
        readable = "".join(c if c.isalnum() or c in "-_." else "-" for c in name)[:60]
        return self.folder / f"{readable}-{hashlib.sha256(name.encode()).hexdigest()[:12]}.lock"

    def try_lock(self, name: str) -> bool:
        if name in self._held:
            return True
        self.folder.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self._path(name), os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            return False
        self._held[name] = descriptor
        return True

    def unlock(self, name: str) -> None:
        descriptor = self._held.pop(name, None)
        if descriptor is not None:
            if name.startswith("driver "):  # nobody else ever takes a driver's own lock for long
                with contextlib.suppress(OSError):
                    self._path(name).unlink()
            os.close(descriptor)

    def _held_elsewhere(self, name: str) -> bool | None:
        path = self._path(name)
        if not path.exists():
            return None
        try:
            descriptor = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(descriptor)  # closing releases a lock taken just to probe
        return False

    def close(self) -> None:
        for name in list(self._held):
            self.unlock(name)


class PostgresCoordinator(Coordinator):
    """Session-level advisory locks (``pg_try_advisory_lock``) on a connection of their own."""

    def __init__(self, url: str) -> None:
        super().__init__()
        import sqlalchemy

        self._engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool,
                                                isolation_level="AUTOCOMMIT")
        self._connection = self._engine.connect()  # holds this driver's locks while it lives
        self._held: set[str] = set()

    @staticmethod
    def _key(name: str) -> int:
        return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)

    def _query(self, connection, function: str, name: str) -> bool:
        import sqlalchemy

        return bool(connection.execute(sqlalchemy.text(f"SELECT {function}(:key)"), {"key": self._key(name)}).scalar())

    def try_lock(self, name: str) -> bool:
        if name in self._held:
            return True
        if self._query(self._connection, "pg_try_advisory_lock", name):
            self._held.add(name)
            return True
        return False

    def unlock(self, name: str) -> None:
        if name in self._held:
            self._held.discard(name)
            self._query(self._connection, "pg_advisory_unlock", name)

    def _held_elsewhere(self, name: str) -> bool | None:
        with self._engine.connect() as probe:  # another session: its own locks would not block it
            if self._query(probe, "pg_try_advisory_lock", name):
                self._query(probe, "pg_advisory_unlock", name)
                return False
            return True

    def close(self) -> None:
        self._held.clear()
        self._connection.close()
        self._engine.dispose()


def coordinator_for(storage_url: str, fallback_dir: str | Path) -> Coordinator:
    """The coordinator every driver of ``storage_url`` agrees on."""
    if storage_url.startswith(JOURNAL_PREFIX):
        path = Path(storage_url[len(JOURNAL_PREFIX):]).resolve()
        return FileCoordinator(path.with_name(path.name + ".locks"))
    if storage_url.startswith("sqlite:///") and ":memory:" not in storage_url:
        path = Path(storage_url[len("sqlite:///"):]).resolve()
        return FileCoordinator(path.with_name(path.name + ".locks"))
    if storage_url.startswith(("postgresql", "postgres")):
        return PostgresCoordinator(storage_url)
    return FileCoordinator(Path(fallback_dir).resolve() / "locks")
