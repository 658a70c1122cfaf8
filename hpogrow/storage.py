"""Optuna storages: SQLite by default, any RDB URL, or a journal file for many processes."""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from typing import Any

import optuna

from hpogrow.errors import UsageError

JOURNAL_PREFIX = "journal:"


def default_storage_url(workdir: str | Path) -> str:
    return f"sqlite:///{Path(workdir) / 'hpogrow.db'}"


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """``sqlite:///path.db`` / ``postgresql://…`` (RDB), or ``journal:path.log`` (journal file)."""
    if url.startswith(JOURNAL_PREFIX):
        path = Path(url[len(JOURNAL_PREFIX):])
        path.parent.mkdir(parents=True, exist_ok=True)
        from optuna.storages.journal import JournalFileBackend

        return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True})
    except (ImportError, ValueError, optuna.exceptions.StorageInternalError) as error:
        raise UsageError(f"--storage {url}: cannot open it ({str(error).splitlines()[0]}); use sqlite:///FILE.db, an RDB URL or journal:FILE.log") from None
    except Exception as error:  # sqlalchemy's ArgumentError and friends
        raise UsageError(f"--storage {url}: cannot open it ({type(error).__name__}: {str(error).splitlines()[0]}); use sqlite:///FILE.db, an RDB URL or journal:FILE.log") from None


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


def load_or_create_study(storage: optuna.storages.BaseStorage, name: str, signature: dict[str, Any],
                         sampler: optuna.samplers.BaseSampler | None = None,
                         pruner: optuna.pruners.BasePruner | None = None) -> optuna.Study:
    """Create the study, or load it when it exists and was made with the same ``signature``.

    A study of the same name made with other settings (or another direction) is a usage error:
    continuing it would mix incomparable trials.
    """
    study = optuna.create_study(study_name=name, storage=storage, direction="minimize", sampler=sampler,
                                pruner=pruner, load_if_exists=True)
    if study.direction != optuna.study.StudyDirection.MINIMIZE:
        raise UsageError(f"study {name!r} exists and maximizes; hpogrow minimizes the validation loss: pass a new --study")
    stored = study.user_attrs.get("signature")
    if stored is None:
        study.set_user_attr("signature", signature)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(["val_loss"])
    elif stored != signature:
        differing = sorted(k for k in set(stored) | set(signature) if stored.get(k) != signature.get(k))
        raise UsageError(f"study {name!r} exists with other settings ({', '.join(differing)}); rerun with the same flags or pass a new --study")
    return study
