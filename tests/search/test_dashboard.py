"""The storage a search writes opens in optuna-dashboard (served in-process on loopback)."""

from __future__ import annotations

import io
import json
import threading
import urllib.request
from wsgiref.simple_server import WSGIRequestHandler, make_server

import optuna
import pytest
from optuna.artifacts import FileSystemArtifactStore
from rich.console import Console

from hpogrow.search import SearchConfig
from hpogrow.search.pipeline import run_pipeline
from hpogrow.storage import open_storage
from tests.search.test_pipeline import WaveRegression, _enqueue


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.mark.parametrize("storage", ["sqlite", "journal"])
def test_dashboard_shows_base_and_target_studies(tmp_path, storage):
    from optuna_dashboard import wsgi

    url = f"journal:{tmp_path / 'work' / 'studies.log'}" if storage == "journal" else None
    space = tmp_path / "space.yaml"
    space.write_text("learning_rate: {low: 1.0e-3, high: 1.0e-1, log: true}\nbatch_size: {choices: [32]}\n")
    config = SearchConfig(base_width=16, trials=2, tokens_per_param=16, workdir=str(tmp_path / "work"), storage=url,
                          space=str(space), evaluations=3, device="cpu", executor="local")
    _enqueue(config, 1e-2, 3e-2)
    result = run_pipeline(WaveRegression(), config, console=Console(file=io.StringIO()))

    app = wsgi(open_storage(config.storage_url), artifact_store=FileSystemArtifactStore(str(tmp_path / "work" / "artifacts")))
    server = make_server("127.0.0.1", 0, app, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        def get(path: str) -> dict:
            with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}{path}", timeout=30) as response:
                return json.loads(response.read())

        summaries = {s["study_name"]: s["study_id"] for s in get("/api/studies")["study_summaries"]}
        target_name = result.plan.target_study
        assert set(summaries) == {"wave-regression-w16/base", target_name}
        base = get(f"/api/studies/{summaries['wave-regression-w16/base']}")
        assert len(base["trials"]) == 2 and all(t["intermediate_values"] for t in base["trials"])
        target = get(f"/api/studies/{summaries[target_name]}")
        roles = {attr["value"] for t in target["trials"] for attr in t["user_attrs"] if attr["key"] == "role"}
        assert roles == {"replicate base", "warmstart", "scratch"}  # the default --seeds 2 --bases 2
        assert target["artifacts"], "the loss-curve plot is attached to the target study"
    finally:
        server.shutdown()
        server.server_close()
    assert optuna.get_all_study_names(open_storage(config.storage_url))
