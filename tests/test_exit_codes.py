"""The exit-code contract: docs/deploy.md's table, what receval exits with, and what the cluster retries.

The table in docs/deploy.md ("Exit codes") is the one source. Argo's retry expression (evaluated
here with the expr-lang operators it uses, over the ``lastRetry`` values Argo injects,
workflow/controller/operator.go) and the Indexed Job's ``podFailurePolicy`` (evaluated with the
job controller's rules: in order, first match wins, unmatched failures count) must give the
table's answer for every code; and a real ``receval`` process must exit 75 when the store fails
transiently and 2 when it refuses for good.
"""

from __future__ import annotations

import http.server
import os
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from receval.cluster import manifests
from receval.errors import EXIT_INPUT_ERROR, EXIT_TRANSIENT

REPO = Path(__file__).resolve().parents[1]


def exit_code_table() -> dict[int, tuple[bool, str]]:
    """``{code: (argo retries, podFailurePolicy action)}`` from docs/deploy.md's "Exit codes" table."""
    text = (REPO / "docs" / "deploy.md").read_text(encoding="utf-8")
    section = text.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    table: dict[int, tuple[bool, str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].isdigit():
            table[int(cells[0])] = (cells[2] == "yes", cells[3])
    return table


def evaluate_expr(expression: str, last_retry: dict[str, str]) -> bool:
    """Evaluate an Argo retry ``expression`` (expr-lang: asInt, ==, !=, in [...], &&, ||, !, parentheses)."""
    tokens = re.findall(r"asInt\(|lastRetry\.\w+|&&|\|\||==|!=|!|\bin\b|\[|\]|\(|\)|,|'[^']*'|\"[^\"]*\"|-?\d+|\S", expression)
    python = []
    for token in tokens:
        if token == "asInt(":
            python.append("int(")
        elif token.startswith("lastRetry."):
            python.append(repr(last_retry[token.split(".", 1)[1]]))
        elif token in ("&&", "||"):
            python.append(" and " if token == "&&" else " or ")
        elif token == "!":
            python.append(" not ")
        elif token == "in":
            python.append(" in ")
        elif re.fullmatch(r"==|!=|\[|\]|\(|\)|,|'[^']*'|\"[^\"]*\"|-?\d+", token):
            python.append(token)
        else:
            raise AssertionError(f"the test's expr evaluator does not know {token!r} in {expression!r}")
    return bool(eval("".join(python), {"__builtins__": {}, "int": int}))  # noqa: S307 - tokens vetted above


def pod_failure_action(policy: dict[str, Any], container: str, exit_code: int | None, conditions: set[str]) -> str:
    """The job controller's podFailurePolicy: the first matching rule's action, else Count."""
    for rule in policy["rules"]:
        codes = rule.get("onExitCodes")
        if codes is not None and exit_code is not None and codes.get("containerName", container) == container:
            inside = exit_code in codes["values"]
            if inside == (codes["operator"] == "In"):
                return rule["action"]
        for pattern in rule.get("onPodConditions") or []:
            if pattern["type"] in conditions and pattern.get("status", "True") == "True":
                return rule["action"]
    return "Count"


def test_the_table_has_the_contracts_codes():
    table = exit_code_table()
    assert {0, 1, EXIT_INPUT_ERROR, EXIT_TRANSIENT, 130, 137, 143} <= table.keys()
    assert table[EXIT_INPUT_ERROR] == (False, "FailIndex") and table[EXIT_TRANSIENT] == (True, "Count")


def test_argo_retries_exactly_what_the_table_says_on_container_templates_only():
    spec = manifests.workflow_template()["spec"]
    assert "retryStrategy" not in spec.get("templateDefaults", {}), "a default retry would also wrap the DAGs"
    table = exit_code_table()
    for template in spec["templates"]:
        if "container" not in template:
            # on a DAG/steps node lastRetry.exitCode is no process's: a retry there multiplies the pod's
            assert "retryStrategy" not in template, template["name"]
            continue
        strategy = template.get("retryStrategy")
        assert strategy, f"{template['name']}: no retryStrategy"
        assert "maxDuration" not in strategy.get("backoff", {}), "maxDuration counts from the first attempt"
        assert strategy["retryPolicy"] == "Always"  # Failed (exit != 0) and Error (pod lost) both
        for code, (retried, _) in table.items():
            if code == 0:
                continue  # a success is not retried whatever the expression says
            got = evaluate_expr(strategy["expression"], {"exitCode": str(code), "status": "Failed"})
            assert got == retried, (template["name"], code, strategy["expression"])
        # a pod lost with its node has no exit code: Argo then injects "0"; it must be retried
        assert evaluate_expr(strategy["expression"], {"exitCode": "0", "status": "Error"})


def test_the_indexed_jobs_pod_failure_policy_follows_the_table():
    job = manifests.indexed_evaluate_job(manifests.PipelineParameters(run_id="r1", store="s3://bucket/p"), "pop")
    policy = job["spec"]["podFailurePolicy"]
    (container,) = job["spec"]["template"]["spec"]["containers"]
    for code, (_, action) in exit_code_table().items():
        if code == 0:
            continue
        assert pod_failure_action(policy, container["name"], code, set()) == action, code
    # evicted, preempted, drained: never counted against backoffLimitPerIndex, whatever the exit code
    for code in (137, 143, EXIT_INPUT_ERROR):
        assert pod_failure_action(policy, container["name"], code, {"DisruptionTarget"}) == "Ignore"
    assert job["spec"]["maxFailedIndexes"] == 0 and job["spec"]["backoffLimitPerIndex"] >= 1


# -- what a real receval process exits with ----------------------------------------------------------
def _prepare(endpoint: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "receval-test", "AWS_SECRET_ACCESS_KEY": "receval-test",
        "AWS_DEFAULT_REGION": "us-east-1", "RECEVAL_S3_MAX_ATTEMPTS": "2",
    }  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "receval", "prepare", "--store", "s3://receval-exit/p", "--run-id", "r1",
         "--dataset", "synthetic"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


class _FixedAnswer(http.server.BaseHTTPRequestHandler):
    """An S3 endpoint that answers every request with one status and S3 error code."""

    status = 503
    code = "SlowDown"

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = f"<?xml version='1.0'?><Error><Code>{self.code}</Code><Message>test</Message></Error>".encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture()
def fixed_answer_server():
    servers = []

    def start(status: int, code: str) -> str:
        handler = type("Handler", (_FixedAnswer,), {"status": status, "code": code})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_an_unreachable_store_exits_75(tmp_path):
    with socket.socket() as s:  # a port nobody listens on: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = _prepare(f"http://127.0.0.1:{port}", tmp_path)
    assert result.returncode == EXIT_TRANSIENT, result.stderr
    assert result.stderr.startswith("receval: error: s3://receval-exit/p/") and result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    "status, code, expected",
    [(503, "SlowDown", EXIT_TRANSIENT), (500, "InternalError", EXIT_TRANSIENT), (403, "AccessDenied", EXIT_INPUT_ERROR)],
    ids=["503-slowdown", "500-internal", "403-denied"],
)
def test_store_failures_exit_with_the_tables_code(fixed_answer_server, tmp_path, status, code, expected):
    result = _prepare(fixed_answer_server(status, code), tmp_path)
    assert result.returncode == expected, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
