"""A loopback stand-in for the Kubernetes API server, for driving the real ``kubernetes`` client.

It records every request (method, path, query, content type, bearer token, JSON body), keeps a small
object store per resource path, and answers like the API server does: full objects with
``metadata.uid``/``resourceVersion``/``creationTimestamp`` (the typed APIs deserialize them), a
``Status`` object on errors, 409 on duplicate names, ``generateName`` handling, label selectors on
lists, merge semantics for PATCH. Failures can be injected per path prefix (403, 404 "CRD not
installed", 401). It cannot show admission, RBAC or controllers: see docs/deploy.md.
"""

from __future__ import annotations

import copy
import json
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

import yaml

TOKEN = "test-token-0123456789"


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    content_type: str | None
    token: str | None
    body: Any


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


def merge(base: Any, patch: Any) -> Any:
    """JSON merge patch (RFC 7386); good enough for the strategic merges our client sends."""
    if not isinstance(patch, dict) or not isinstance(base, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge(out.get(key), value)
    return out


@dataclass
class FakeKubeAPI:
    requests: list[Recorded] = field(default_factory=list)
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)  # "collection path/name" -> object
    failures: dict[str, tuple[int, str, str]] = field(default_factory=dict)  # path prefix -> status
    on_get: Callable[[str, dict[str, Any]], None] | None = None  # lets a test advance a workflow
    _counter: int = 0

    # -- server lifecycle ------------------------------------------------------------------------
    def start(self) -> FakeKubeAPI:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                auth = self.headers.get("Authorization") or ""
                parts = urlsplit(self.path)
                record = Recorded(
                    self.command, parts.path, parse_qs(parts.query), self.headers.get("Content-Type"),
                    auth[len("Bearer "):] if auth.startswith("Bearer ") else None,
                    json.loads(raw) if raw else None,
                )
                api.requests.append(record)
                code, reply = api.answer(record)
                data = json.dumps(reply).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def write_kubeconfig(self, path: Path, namespace: str = "receval", token: str = TOKEN) -> Path:
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "tester", "user": {"token": token}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "tester", "namespace": namespace}}],
        }
        path.write_text(yaml.safe_dump(config))
        return path

    # -- behaviour -------------------------------------------------------------------------------
    def put(self, collection: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Store ``obj`` under ``collection`` (e.g. /apis/argoproj.io/v1alpha1/namespaces/ns/workflows)."""
        self._counter += 1
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        if not meta.get("name"):
            meta["name"] = meta.get("generateName", "obj-") + f"x{self._counter:04d}"
        meta.setdefault("uid", str(uuid.uuid4()))
        meta["resourceVersion"] = str(1000 + self._counter)
        meta.setdefault("creationTimestamp", f"2024-05-01T02:30:{self._counter % 60:02d}Z")
        meta.setdefault("namespace", collection.split("/namespaces/")[1].split("/")[0] if "/namespaces/" in collection else None)
        self.objects[f"{collection}/{meta['name']}"] = obj
        return obj

    def answer(self, r: Recorded) -> tuple[int, Any]:
        for prefix, (code, reason, message) in self.failures.items():
            if r.path.startswith(prefix):
                return code, _status(code, reason, message)
        if r.token != TOKEN:
            return 401, _status(401, "Unauthorized", "Unauthorized")
        if r.method == "POST":
            name = (r.body.get("metadata") or {}).get("name")
            if name and f"{r.path}/{name}" in self.objects:
                return 409, _status(409, "AlreadyExists", f'"{name}" already exists')
            return 201, self.put(r.path, r.body)
        if r.path in self.objects:
            obj = self.objects[r.path]
            if r.method == "GET":
                if self.on_get:
                    self.on_get(r.path, obj)
                return 200, obj
            if r.method == "PATCH":
                patched = merge(obj, r.body)
                patched["metadata"]["resourceVersion"] = str(int(obj["metadata"]["resourceVersion"]) + 1)
                self.objects[r.path] = patched
                return 200, patched
            if r.method == "DELETE":
                del self.objects[r.path]
                return 200, _status(200, "", "") | {"status": "Success"}
        if r.method == "GET" and len(r.path.strip("/").split("/")) == 6:  # /apis/G/V/namespaces/NS/PLURAL
            selector = dict(s.split("=", 1) for s in r.query.get("labelSelector", [""])[0].split(",") if "=" in s)
            items = [
                o for k, o in self.objects.items()
                if k.rsplit("/", 1)[0] == r.path
                and all(o["metadata"].get("labels", {}).get(a) == b for a, b in selector.items())
            ]
            return 200, {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": "1"}, "items": items}
        return 404, _status(404, "NotFound", f'"{r.path.rsplit("/", 1)[-1]}" not found')

    def crd_missing(self, group_prefix: str = "/apis/argoproj.io/") -> None:
        """Answer like a cluster without Argo: the whole group is unknown."""
        self.failures[group_prefix] = (404, "NotFound", "the server could not find the requested resource")
