"""Starting or joining Ray: addresses, Ray's token authentication, and one-line errors.

``address`` is ``None`` (start a local Ray runtime, never join one), ``auto`` (the cluster in
``RAY_ADDRESS`` or the one ``ray start`` last started on this machine), ``HOST:PORT`` (the GCS
address ``ray start --head`` prints) or ``ray://HOST:PORT`` (Ray Client, port 10001 by default).

**Token authentication** (Ray ≥ 2.52; ``ray start --head`` turns it on when a token exists, and
every ``ray.init()`` of a local runtime writes one to ``~/.ray/auth_token``). Ray sends the token
only when ``RAY_AUTH_MODE=token`` is set, and sets that itself only for ``auto``; joining by an
explicit address then fails with "Authentication token is missing or incorrect". hpogrow does what
Ray does for ``auto`` for every address: when ``RAY_AUTH_MODE`` is not set and Ray finds a token
where its documentation says it looks (``RAY_AUTH_TOKEN``, the file ``RAY_AUTH_TOKEN_PATH``
names, ``~/.ray/auth_token``), it turns token mode on for this process. A cluster without
authentication accepts a token too. ``RAY_AUTH_MODE=disabled`` is respected.

**Nothing there.** Before ``ray.init`` the host and port Ray is about to connect to (the GCS port,
or the Ray Client port of a ``ray://`` address) get one TCP connection attempt of
:data:`PROBE_SECONDS` (:func:`probe_address`; a ``RayExecutor`` with an address calls it when it is
made, before anything is written): an address where nothing listens fails at once with one line,
where ``ray.init`` would retry for minutes. A port that answers but is not Ray's is left to Ray.
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

from hpogrow.errors import UsageError

AUTH_MODE = "RAY_AUTH_MODE"
_REFUSED = "Authentication token is missing or incorrect"
PROBE_SECONDS = 5.0
"""How long the TCP connection to a cluster's address may take before hpogrow gives up on it."""
_CLIENT_PORT = 10001  # Ray Client's port when a ray:// address names none


def join_ray(address: str | None, num_cpus: int | None = None, verbose: bool = False) -> None:
    """``ray.init`` for ``address`` (see the module docstring); a local runtime gets ``num_cpus``
    (default: all of this machine's).

    Raises:
        UsageError: one line saying why Ray could not be joined there and what to do.
    """
    import ray

    options = dict(log_to_driver=verbose, logging_level=logging.INFO if verbose else logging.ERROR)
    if address is None:  # "local": never join a cluster that `ray start` left running
        ray.init(address="local", num_cpus=num_cpus or os.cpu_count(), include_dashboard=False, **options)
        return
    probe_address(address)
    use_cluster_token()
    if not address.startswith("ray://"):
        options["include_dashboard"] = False  # Ray Client passes its options to the server's ray.init
    # A head node started moments ago may fail Ray Client's first connection while its runtime
    # environment agent starts ("Starting Ray client server failed"); the next one succeeds.
    attempts = 2 if address.startswith("ray://") else 1
    for attempt in range(1, attempts + 1):
        try:
            ray.init(address=address, **options)
            return
        except ConnectionAbortedError as error:
            if attempt == attempts:
                raise UsageError(f"--ray-address {address}: {_join_problem(address, error)}") from None
        except (ConnectionError, RuntimeError, ValueError) as error:
            raise UsageError(f"--ray-address {address}: {_join_problem(address, error)}") from None


def use_cluster_token() -> bool:
    """Turn on Ray's token authentication for this process when ``RAY_AUTH_MODE`` is unset and
    Ray finds a token (Ray's own lookup); True when token mode is on."""
    if AUTH_MODE in os.environ:
        return os.environ[AUTH_MODE].lower() == "token"
    try:
        from ray._private.authentication.authentication_token_setup import maybe_enable_token_auth_if_token_available
    except ImportError:  # Ray before 2.52 has no token authentication
        return False
    return maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


def through_ray_client() -> bool:
    """Whether this process is connected through Ray Client (``ray://``)."""
    from ray.util.client import ray as client

    return client.is_connected()


def token_source() -> str | None:
    """Where Ray reads this machine's token from, in its order of precedence; None if nowhere."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return "RAY_AUTH_TOKEN"
    if os.environ.get("RAY_AUTH_TOKEN_PATH"):
        return os.environ["RAY_AUTH_TOKEN_PATH"]
    default = Path.home() / ".ray" / "auth_token"
    return str(default) if default.is_file() else None


def probe_address(address: str) -> None:
    """One TCP connection to where ``ray.init(address)`` will connect; a one-line
    :class:`UsageError` when nothing answers there within :data:`PROBE_SECONDS`."""
    endpoint = _endpoint(address)
    if endpoint is None:  # nothing to probe: ray.init says what is wrong (quickly)
        return
    hosts, port = endpoint
    reason = ""
    for host in hosts:
        try:
            socket.create_connection((host, port), timeout=PROBE_SECONDS).close()
            return
        except socket.timeout:
            reason = reason or f"no answer within {PROBE_SECONDS:g} s"
        except ConnectionRefusedError:
            reason = reason or "connection refused"
        except socket.gaierror:
            reason = reason or "unknown host"
        except OSError as error:
            reason = reason or error.strerror or str(error)
    where = f"{hosts[-1]}:{port}" + (", the cluster it finds" if address == "auto" else "")
    if address.startswith("ray://") or (address == "auto" and os.environ.get("RAY_ADDRESS", "").startswith("ray://")):
        fix = "check the host and the port (`ray start --head` opens Ray Client on 10001)"
    else:
        fix = "start one with 'ray start --head' and pass the address it prints, or drop --ray-address"
    raise UsageError(f"--ray-address {address}: nothing answers at {where} ({reason}); {fix}")


def _endpoint(address: str) -> tuple[list[str], int] | None:
    """The hosts (Ray's first) and the port ``ray.init(address)`` connects to, or None when that
    is not known here (no cluster found for ``auto``, a malformed address, another protocol)."""
    if address == "auto":  # Ray reads RAY_ADDRESS first, then the cluster `ray start` last started
        address = os.environ.get("RAY_ADDRESS") or address
    client = address.startswith("ray://")
    if client:
        address = address[len("ray://"):]
    elif "://" in address:
        return None
    elif address == "auto":
        try:
            from ray._private.services import get_ray_address_from_environment

            address = get_ray_address_from_environment("auto", None)
        except Exception:  # noqa: BLE001 - no cluster found (or a Ray without this helper): ray.init says so
            return None
    host, port = _host_and_port(address)
    port = port or (str(_CLIENT_PORT) if client else "")
    if not host or not port.isdigit():
        return None
    hosts = [host]
    if not client:  # Ray replaces a loopback host with this machine's address, and connects there
        try:
            from ray._private.services import resolve_ip_for_localhost

            hosts = list(dict.fromkeys([resolve_ip_for_localhost(host), host]))
        except Exception:  # noqa: BLE001 - keep the host as given
            pass
    return hosts, int(port)


def _host_and_port(address: str) -> tuple[str, str]:
    """``HOST:PORT``, ``HOST`` or ``[IPv6]:PORT`` split in two (the port ``""`` when absent)."""
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        return host, rest[1:] if rest.startswith(":") else ""
    if address.count(":") == 1:
        host, _, port = address.partition(":")
        return host, port
    return (address, "") if ":" not in address else ("", "")


def _join_problem(address: str, error: BaseException) -> str:
    """What went wrong joining ``address``, and what to do, in one line."""
    said = []
    while error is not None and len(said) < 10:  # Ray wraps the GCS client's error twice
        said.append(f"{type(error).__name__}: {error}")
        error = error.__cause__ or error.__context__
    text = "\n".join(said)
    first_line = said[0].split(": ", 1)[-1].strip().splitlines()[0] if said else "no answer"
    if _REFUSED in text or "AuthenticationError" in text:
        source = token_source()
        if source is None:
            return (f"the cluster wants Ray's authentication token ({_REFUSED}) and this machine has none; copy the "
                    "head node's ~/.ray/auth_token to ~/.ray/auth_token here, or set RAY_AUTH_TOKEN")
        return (f"the cluster refused this machine's Ray token, from {source} ({_REFUSED}); use the head node's "
                "token (its ~/.ray/auth_token, or `ray get-auth-token` there)")
    if address.startswith("ray://"):
        return (f"no Ray Client server answered ({first_line}); check the port (`ray start --head` opens 10001) "
                "and, with token authentication on, that this machine has the cluster's token "
                "(~/.ray/auth_token or RAY_AUTH_TOKEN)")
    return (f"cannot join a Ray cluster there ({first_line}); start one with 'ray start --head' and pass the "
            "address it prints, or drop --ray-address")
