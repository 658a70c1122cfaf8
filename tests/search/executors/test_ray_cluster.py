"""A real Ray cluster of two nodes on this machine, started as a user starts one (``ray start
--head``, then ``ray start --address`` with ``RAY_AUTH_MODE=token``), with Ray's token
authentication on: joining it by ``HOST:PORT``, ``auto`` and ``ray://``; base trials spread over
both nodes; a worker node killed in the middle of a search; and, through Ray Client, a
``--workdir`` the nodes do not share.

The nodes share this machine's folders, except ``private``: every node runs in a mount namespace
of its own with an empty folder mounted there (where ``unshare`` is allowed), so a workdir under
it is what a workdir on one machine's local disk is to a real cluster.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest

from tests.ray_nodes import RAY, RayCluster

pytestmark = pytest.mark.slow
TrialState = optuna.trial.TrialState
ROOT = Path(__file__).resolve().parents[3]
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


def _private_mounts_allowed() -> bool:
    try:
        return subprocess.run(["unshare", "-m", "--propagation", "private", "true"], capture_output=True).returncode == 0
    except FileNotFoundError:
        return False


@pytest.fixture(scope="module")
def cluster() -> Iterator[RayCluster]:
    """Head and worker node, one CPU each; the token in ``~/.ray/auth_token`` of a HOME of their own."""
    root = Path(tempfile.mkdtemp(prefix="hpc", dir="/tmp"))
    cluster = RayCluster(home=root / "home")
    cluster.home.mkdir()
    cluster.private = root / "private"  # a folder each node sees empty, in a mount namespace of its own
    cluster.private.mkdir()
    wrap = (["unshare", "-m", "--propagation", "private", "sh", "-c", 'mount -t tmpfs tmpfs "$0" && exec "$@"',
             str(cluster.private)] if _private_mounts_allowed() else [])
    cluster.private_mounts = bool(wrap)
    subprocess.run([RAY, "get-auth-token", "--generate"], env=cluster.ray_env(), capture_output=True, check=True)
    try:
        cluster.start_node(cpus=1, head=True, wrap=wrap)
        cluster.start_node(cpus=1, wrap=wrap)
        yield cluster
    finally:
        cluster.stop()
        subprocess.run(["rm", "-rf", str(root)])


_JOIN = textwrap.dedent("""
    import sys
    import ray
    from hpogrow.errors import UsageError
    from hpogrow.search.executors.ray_join import join_ray

    try:
        join_ray(sys.argv[1])
    except UsageError as error:
        print("USAGE", error)
    else:
        print("JOINED", sys.argv[1], int(ray.cluster_resources().get("CPU", 0)))
""")


def _join(cluster: RayCluster, address: str, **env: str) -> str:
    """What a new process joining ``address`` (with hpogrow's ``join_ray``) says."""
    # RAY_ADDRESS is what `auto` joins first; a short GCS wait keeps the refused joins quick
    environment = cluster.ray_env(RAY_ADDRESS=cluster.address, RAY_gcs_server_port_wait_time_s="3", **env)
    out = subprocess.run([sys.executable, "-c", _JOIN, address], env=environment, capture_output=True, text=True,
                         timeout=240, cwd=ROOT)
    said = [line for line in out.stdout.splitlines() if line.startswith(("JOINED", "USAGE"))]
    return said[0] if said else out.stderr[-2000:]


def test_joins_by_host_port_auto_and_ray_client_with_the_token(cluster):
    client = f"ray://{cluster.host}:{cluster.client_port}"
    for address in (cluster.address, "auto", client):
        assert _join(cluster, address) == f"JOINED {address} 2"  # both nodes' CPUs

    refused = _join(cluster, cluster.address, RAY_AUTH_TOKEN="0" * 32)
    assert refused.startswith(f"USAGE --ray-address {cluster.address}: the cluster refused this machine's Ray token, "
                              "from RAY_AUTH_TOKEN (Authentication token is missing or incorrect)"), refused
    empty_home = cluster.home.parent / "empty-home"
    empty_home.mkdir(exist_ok=True)
    missing = _join(cluster, cluster.address, HOME=str(empty_home))
    assert "this machine has none; copy the head node's ~/.ray/auth_token" in missing, missing


def _search(cluster: RayCluster, workdir: Path, trials: int, ray_storage: Path, tokens_per_param: float = 2,
            evaluations: int = 4, address: str | None = None, storage: str | None = None) -> subprocess.Popen:
    """``hpogrow search`` joining the cluster (default: by the address ``ray start --head``
    printed); every trial runs its full budget (705 parameters: 1,410 tokens at 2 tokens/parameter)."""
    command = [sys.executable, "-m", "hpogrow", "search", "--task", "mlp", "--base-width", "16", "--depth", "1",
               "--trials", str(trials), "--tokens-per-param", str(tokens_per_param), "--evaluations", str(evaluations),
               "--device", "cpu", "--scheduler", "none", "--seeds", "1", "--bases", "1", "--ray-address", address or cluster.address,
               "--workdir", str(workdir),
               "--ray-storage", str(ray_storage), *(["--storage", storage] if storage else [])]
    return subprocess.Popen(command, env=cluster.ray_env(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _base_trials(workdir: Path) -> list[optuna.trial.FrozenTrial]:
    try:
        return optuna.load_study(study_name="mlp-w16/base", storage=f"sqlite:///{workdir}/hpogrow.db").trials
    except (KeyError, Exception):  # not created yet
        return []


def test_trials_spread_over_nodes_and_a_killed_worker_node_loses_nothing(cluster, tmp_path):
    """Trials run on both nodes; the driver grows from checkpoints other nodes wrote (shared
    workdir); the worker node is killed while a trial runs on it: Tune runs that trial again on
    the head node (from its last rung checkpoint; with no scheduler it has none, so from token 0)
    and its Optuna trial is told only then: nothing FAILs, and the pipeline completes."""
    nodes = cluster.node_ids()
    worker = next(node for node, role in nodes.items() if role == "worker")
    workdir, trials = tmp_path / "work", 5
    # ~15 s per trial, in 8 evaluations: the driver records a trial's evaluations late when the
    # machine is busy, so a kill timed on 2 recorded evaluations must leave most of the trial to
    # run (with 2 of 4 in ~10 s it once landed after the trial had ended: CI, stop 26)
    search = _search(cluster, workdir, trials, tmp_path / "ray-results", tokens_per_param=48, evaluations=8)
    try:
        hit = None
        deadline = time.monotonic() + 300
        while hit is None and search.poll() is None and time.monotonic() < deadline:
            # A trial seen RUNNING on the worker with one or two of its eight evaluations recorded is
            # early in its run: the kill lands inside it.
            hit = next((t.number for t in _base_trials(workdir) if t.state == TrialState.RUNNING
                        and t.user_attrs.get("node") == worker and 1 <= len(t.intermediate_values) <= 2), None)
            if hit is not None:
                cluster.nodes[1].kill()
            time.sleep(0.2)
        out, err = search.communicate(timeout=400)
    finally:
        if search.poll() is None:
            search.kill()
    assert hit is not None, f"no trial ran on the worker node to kill it under:\n{err[-3000:]}"
    assert search.returncode == 0, err[-3000:]

    study = _base_trials(workdir)
    assert len(study) == trials and all(t.state == TrialState.COMPLETE for t in study), \
        [(t.number, t.state, t.user_attrs.get("fail_reason")) for t in study]  # nothing lost, failed or left RUNNING
    assert study[hit].user_attrs["node"] == next(node for node, role in nodes.items() if role == "head")  # ran again there
    assert {t.user_attrs["node"] for t in study} | {worker} == set(nodes)
    for trial in study:  # written on either node, read here
        assert (Path(trial.user_attrs["checkpoint"]) / "model.pt").is_file()
    target = optuna.load_study(study_name="mlp-w16/target-w24", storage=f"sqlite:///{workdir}/hpogrow.db")
    assert sorted(t.user_attrs["role"] for t in target.trials if t.state == TrialState.COMPLETE) == ["scratch", "warmstart"]


def test_a_workdir_the_nodes_do_not_share_is_a_clear_error(cluster, tmp_path):
    """Through Ray Client: the base search runs as a task on the head node and writes the study
    (a storage every node reaches); the trial's checkpoint lands on its node's own disk, and
    the driver says so instead of growing."""
    if not cluster.private_mounts:
        pytest.skip("no private mount namespaces here (unshare -m needs root or user namespaces)")
    workdir = cluster.private / "work"  # on this machine's disk only: every node writes into its own, empty one
    storage = f"sqlite:///{tmp_path / 'hpogrow.db'}"
    search = _search(cluster, workdir, 1, tmp_path / "ray-results", address=f"ray://{cluster.host}:{cluster.client_port}",
                     storage=storage)
    out, err = search.communicate(timeout=400)
    assert search.returncode == 2, err[-3000:]
    assert "trial 0 COMPLETE" in out  # read from the study the head node's task wrote
    last = err.strip().splitlines()[-1]
    assert "the checkpoint of trial 0 of mlp-w16/base on Ray node" in last
    assert f"{workdir}/checkpoints/" in last  # {storage key}/mlp-w16/base/trial-0
    assert "/mlp-w16/base/trial-0, is not on this machine; on several machines, put --workdir" in last
    assert "Traceback" not in err
    trial = optuna.load_study(study_name="mlp-w16/base", storage=storage).trials[0]
    assert trial.state == TrialState.COMPLETE and trial.user_attrs["node"] in last
