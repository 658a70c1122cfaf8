"""Optuna storages: SQLite by default, any RDB URL, or a journal file for many processes."""

from __future__ import annotations

import hashlib
import re
import time
import warnings
from pathlib import Path
from typing import Any

import optuna

from hpogrow.errors import UsageError

JOURNAL_PREFIX = "journal:"


def default_storage_url(workdir: str | Path) -> str:
    return f"sqlite:///{Path(workdir) / 'hpogrow.db'}"


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """``sqlite:///path.db`` / ``postgresql://user@host:port/database`` (RDB), or ``journal:path.log``
    (Optuna's journal file).

    Raises:
        UsageError: one line naming the storage (password hidden) and what to do, when the URL
            does not parse, its driver is not installed, or its server cannot be reached or has
            no such database.
    """
    if url.startswith(JOURNAL_PREFIX):
        path = Path(url[len(JOURNAL_PREFIX):])
        _make_parent(url, path)
        from optuna.storages.journal import JournalFileBackend

        return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    if url.startswith("sqlite:///"):
        _make_parent(url, Path(url[len("sqlite:///"):]))
    try:
        return _open_rdb(url)
    except Exception as error:  # sqlalchemy's ArgumentError, the driver's OperationalError, ImportError
        raise UsageError(f"--storage {_shown(url)}: {_storage_problem(error)}") from None


def _open_rdb(url: str, attempts: int = 5) -> optuna.storages.RDBStorage:
    """Optuna's RDB storage. Processes that open one new database at the same moment race to
    create Optuna's tables, and the losers' ``CREATE`` fails (on PostgreSQL, a duplicate
    ``pg_type`` row; on SQLite, "table … already exists"); opened again once the winner's
    tables exist, they succeed."""
    from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

    for attempt in range(1, attempts):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True})
        except (IntegrityError, ProgrammingError):
            time.sleep(0.2 * attempt)
        except OperationalError as error:
            if "already exists" not in str(error):
                raise
            time.sleep(0.2 * attempt)
    return optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True})


def _make_parent(url: str, path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"--storage {url}: cannot create its folder {path.parent} ({error.strerror})") from None


def _shown(url: str) -> str:
    """The URL as it may be printed: its password replaced by ``***``."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL at all: nothing to hide
        return url


def _storage_problem(error: Exception) -> str:
    """What went wrong opening an RDB storage, and what to do, in one line."""
    from sqlalchemy.exc import ArgumentError, OperationalError

    missing = error.__cause__ if isinstance(error.__cause__, ModuleNotFoundError) else None
    if missing is not None:
        return (f"its database driver is not installed (no module {missing.name!r}); pip install it, or use "
                "postgresql://… (psycopg, installed with hpogrow) or sqlite:///FILE.db")
    first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
    if isinstance(error, ArgumentError):
        return (f"not a storage URL ({first_line}); use sqlite:///FILE.db, "
                "postgresql://USER@HOST:PORT/DATABASE or journal:FILE.log")
    # the driver's own words, e.g. "(psycopg.OperationalError) connection failed: … failed: Connection refused"
    reason = re.sub(r"^\([\w.]+\)\s*", "", first_line).split(" failed: ")[-1].removeprefix("FATAL:").strip()
    if "does not exist" in reason and "database" in reason:
        return f"{reason} on that server; create it first (createdb), or name an existing database"
    if isinstance(error, OperationalError):
        return f"cannot connect ({reason}); check that the server runs and that host, port, user and database are right"
    return f"cannot open it ({type(error).__name__}: {first_line})"


def storage_key(url: str) -> str:
    """A short name for a storage, the same from any working folder: ``hpogrow.db-1a2b3c4d``.

    Files are named by their absolute path, servers by user, host, port and database (never the
    password). Checkpoint folders are kept apart by it, so two storages never share one.
    """
    if url.startswith(JOURNAL_PREFIX) or url.startswith("sqlite:///"):
        prefix = JOURNAL_PREFIX if url.startswith(JOURNAL_PREFIX) else "sqlite:///"
        path = Path(url[len(prefix):]).resolve()
        identity, name = f"{prefix}{path}", path.name
    else:
        import sqlalchemy

        parsed = sqlalchemy.engine.make_url(url)
        identity = parsed.set(password=None).render_as_string(hide_password=False)
        name = parsed.database or parsed.get_backend_name()
    readable = "".join(c if c.isalnum() or c in "-_." else "-" for c in name)[:40]
    return f"{readable}-{hashlib.sha256(identity.encode()).hexdigest()[:8]}"


def dashboard_command(url: str, artifact_dir: str | Path) -> str:
    """The exact ``optuna-dashboard`` command that opens this storage with its artifacts."""
    target = url[len(JOURNAL_PREFIX):] if url.startswith(JOURNAL_PREFIX) else url
    return f"optuna-dashboard {target} --artifact-dir {artifact_dir}"


def load_or_create_study(storage: optuna.storages.BaseStorage, name: str, signature: Any,
                         sampler: optuna.samplers.BaseSampler | None = None,
                         pruner: optuna.pruners.BasePruner | None = None) -> optuna.Study:
    """Create the study, or load it when it exists and was made with the same ``signature``.

    A study of the same name made with other settings (or another direction) is a usage error:
    continuing it would mix incomparable trials. ``signature`` is a signature dataclass
    (:mod:`hpogrow.record.study`) or a JSON-safe dictionary.
    """
    from hpogrow.record.study import read_signature, signature_dict, write_signature

    study = optuna.create_study(study_name=name, storage=storage, direction="minimize", sampler=sampler,
                                pruner=pruner, load_if_exists=True)
    if study.direction != optuna.study.StudyDirection.MINIMIZE:
        raise UsageError(f"study {name!r} exists and maximizes; hpogrow minimizes the validation loss: pass a new --study")
    stored, signature = read_signature(study), signature_dict(signature)
    if stored is None:
        write_signature(study, signature)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(["val_loss"])
    elif stored != signature:
        differing = sorted(k for k in set(stored) | set(signature) if stored.get(k) != signature.get(k))
        raise UsageError(f"study {name!r} exists with other settings ({', '.join(differing)}); rerun with the same flags or pass a new --study")
    return study
