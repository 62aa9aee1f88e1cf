"""One run id, one configuration: who owns a run folder, decided by an atomic create of ``run.json``.

The first ``receval prepare`` (or ``receval run``) of a run id creates its ``run.json`` with
:meth:`~receval.storage.Store.create_exclusive`: ``O_EXCL``-like on a local folder (a hard link),
a conditional PUT (``If-None-Match: *``) on an S3 server that honours it. Whoever finds the
object already there compares configurations: the same one joins the run (two identical runs may
both go on; every step is idempotent), another one is refused with
:class:`RunOwnedError` naming the run and its owner, before it writes anything.

Where the server ignores the condition (rclone), ``run.json`` is a lease: written with a random
owner token, re-read after :data:`LEASE_SETTLE_SECONDS`, and the run is ours only if the token
read back is ours or names the same configuration. This closes the race unless a writer stalls
longer than the settle time between its existence check and its PUT (``docs/storage.md``).
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import time
from datetime import datetime, timezone
from typing import Any

from receval.config import RunConfig
from receval.errors import ConfigError, StoreError
from receval.pipeline import layout
from receval.storage import Store

#: How long a lease is left to settle before it is read back (stores without conditional PUT).
LEASE_SETTLE_SECONDS = float(os.environ.get("RECEVAL_LEASE_SETTLE_SECONDS", "1.0"))


def now() -> str:
    """UTC time as ISO 8601 (``2024-05-01T12:00:00+00:00``), the format of run.json timestamps."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class RunOwnedError(ConfigError):
    """The run id is taken by a run with another configuration (exit 2); nothing was written."""


def _owner_text(meta: dict[str, Any]) -> str:
    owner = meta.get("owner") if isinstance(meta.get("owner"), dict) else {}
    parts = [f"{k} {owner[k]}" for k in ("host", "pid") if owner.get(k) is not None]
    created = owner.get("since") or meta.get("created")
    if created:
        parts.append(f"since {created}")
    return ", ".join(parts) or "an earlier run"


def _check_same(store: Store, run_id: str, meta: Any, config: RunConfig) -> bool:
    """True when ``meta`` is this configuration's run; False when it is no run at all (take it over)."""
    if not isinstance(meta, dict) or not isinstance(meta.get("config"), dict):
        return False  # a minimal run.json of mark-failed, or garbage: nobody owns the run
    if meta["config"] == config.to_dict():
        return True
    dataset = (meta.get("dataset") or {}).get("name") if isinstance(meta.get("dataset"), dict) else None
    raise RunOwnedError(
        f"run {run_id} in {store.uri} is owned by another configuration ({_owner_text(meta)}"
        + (f", dataset {dataset}" if dataset else "")
        + "): choose another --run-id, or rerun with the same configuration to join or resume it"
    )


def _read(store: Store, key: str) -> Any:
    try:
        return store.read_json(key)
    except (ValueError, UnicodeDecodeError):
        return None  # torn or foreign: not a run description
    except StoreError:
        if not store.exists(key):
            return None
        raise


def claim_run(store: Store, run_id: str, config: RunConfig) -> dict[str, Any]:
    """Take or join run ``run_id`` for ``config`` before anything of it is written.

    A new run gets a first ``run.json`` (status ``running``, the configuration and an ``owner``:
    host, pid, random token, time), which the prepare step then completes. Returns the owner
    entry of the run (ours, or that of the identical run we join). Raises :class:`RunOwnedError`
    when another configuration owns it.
    """
    key = layout.run_json_key(run_id)
    owner = {"host": socket.gethostname(), "pid": os.getpid(), "token": secrets.token_hex(8), "since": now()}
    ours = {"layout": layout.LAYOUT_VERSION, "run_id": run_id, "status": "running", "created": owner["since"],
            "finished": None, "failure": None, "config": config.to_dict(), "owner": owner}
    data = (json.dumps(ours, indent=2, default=str) + "\n").encode()
    if not store.create_exclusive(key, data):
        existing = _read(store, key)
        if _check_same(store, run_id, existing, config):
            return existing.get("owner") or owner
        store.write_bytes(key, data)  # an unowned run.json: take it over, then verify as a lease
    elif store.atomic_create:
        return owner
    # a lease: read it back once concurrent writers had time to land, keep it only if it is still ours
    time.sleep(LEASE_SETTLE_SECONDS)
    current = _read(store, key)
    if isinstance(current, dict) and (current.get("owner") or {}).get("token") == owner["token"]:
        return owner
    if not _check_same(store, run_id, current, config):
        raise RunOwnedError(f"run {run_id} in {store.uri}: its run.json changed under us and is unreadable; "
                            f"another writer is preparing it")
    return current.get("owner") or owner


__all__ = ["LEASE_SETTLE_SECONDS", "RunOwnedError", "claim_run"]
