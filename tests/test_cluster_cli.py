"""`receval submit/schedule/status/render` with the real kubernetes client against a loopback API.

Every body the CLI sends is validated with the same strict schema checks as the shipped manifests.
"""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from k8s_fake_api import TOKEN, FakeKubeAPI  # noqa: E402
from schema_validation import assert_valid  # noqa: E402

from receval.cli import main  # noqa: E402
from receval.cluster import manifests  # noqa: E402
from tests import argo_dag  # noqa: E402

NS = "receval"
ARGO = f"/apis/argoproj.io/v1alpha1/namespaces/{NS}"
BATCH = f"/apis/batch/v1/namespaces/{NS}"


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture()
def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    for var in ("KUBECONFIG", "RECEVAL_STORE", "RECEVAL_NAMESPACE", "KUBERNETES_SERVICE_HOST"):
        monkeypatch.delenv(var, raising=False)
    fake = FakeKubeAPI().start()
    fake.kubeconfig = str(fake.write_kubeconfig(tmp_path / "kubeconfig"))
    yield fake
    fake.stop()


def with_template(api: FakeKubeAPI) -> None:
    api.put(f"{ARGO}/workflowtemplates", manifests.workflow_template())


def assert_wire(req, method: str, path: str, content_type: str | None = "application/json") -> None:
    assert (req.method, req.path) == (method, path)
    assert req.token == TOKEN  # the kubeconfig's bearer token reached the server
    if content_type:
        assert req.content_type == content_type


def test_submit_creates_workflow_from_template(api, capsys):
    with_template(api)
    code, out, err = run_cli(
        ["submit", "--kubeconfig", api.kubeconfig, "--store", "s3://evals/receval", "--run-id", "r-2024",
         "--algorithm", "pop,ub", "--shards", "16"], capsys)  # fmt: skip
    assert code == 0, err
    check, create = api.requests
    assert_wire(check, "GET", f"{ARGO}/workflowtemplates/receval-pipeline", None)
    assert_wire(create, "POST", f"{ARGO}/workflows")
    body = create.body
    assert_valid(body, "submitted")
    assert body["spec"]["workflowTemplateRef"] == {"name": "receval-pipeline"}
    assert body["metadata"]["labels"]["receval.io/run-id"] == "r-2024"
    params = {p["name"]: p["value"] for p in body["spec"]["arguments"]["parameters"]}
    # only what was given: the template keeps the other defaults
    assert params == {"run-id": "r-2024", "store": "s3://evals/receval", "shards": "16",
                      "algorithms": json.dumps(["pop", "ub"])}  # fmt: skip
    name = out.strip()
    assert name.startswith("receval-r-2024-") and f"{ARGO}/workflows/{name}" in api.objects


def test_submit_dry_run_prints_valid_yaml_without_a_cluster(capsys):
    code, out, _ = run_cli(["submit", "--store", "s3://evals/receval", "--run-id", "r1", "--dry-run"], capsys)
    assert code == 0
    doc = yaml.safe_load(out)
    assert_valid(doc, "dry-run")
    assert doc["kind"] == "Workflow"


def test_nightly_submit_uses_tonights_run_id_and_a_fixed_name(api, capsys, monkeypatch):
    """The CronJob's `submit --nightly`: run id nightly-<today>, a Workflow named after it, so a
    retried Job pod (or a second scheduler) gets 409 and starts nothing; the exit is still 0."""
    import datetime as dt

    with_template(api)
    monkeypatch.setenv("RECEVAL_STORE", "s3://evals/receval")  # the CronJob passes the ConfigMap as env
    code, out, err = run_cli(["submit", "--kubeconfig", api.kubeconfig, "--nightly"], capsys)
    assert code == 0, err
    today = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d")
    body = api.requests[-1].body
    assert body["metadata"]["labels"]["receval.io/run-id"] == f"nightly-{today}"
    assert "generateName" not in body["metadata"] and out.strip() == body["metadata"]["name"]
    workflows = [k for k in api.objects if "/workflows/" in k]
    code, out, err = run_cli(["submit", "--kubeconfig", api.kubeconfig, "--nightly"], capsys)
    assert code == 0, err
    assert "already submitted" in out and [k for k in api.objects if "/workflows/" in k] == workflows
    assert api.requests[-1].method == "POST"  # it was refused by the API (409), not skipped by us


def test_manual_submit_never_takes_a_nightly_run_id(api, capsys, monkeypatch):
    with_template(api)
    monkeypatch.setenv("RECEVAL_STORE", "s3://evals/receval")
    code, _, err = run_cli(["submit", "--kubeconfig", api.kubeconfig], capsys)
    assert code == 0, err
    run_id = api.requests[-1].body["metadata"]["labels"]["receval.io/run-id"]
    assert run_id.startswith("manual-") and len(run_id) == len("manual-YYYYMMDD-HHMMSS")
    # The same run id twice is refused with a one-line error, not a second run in the same folder.
    args = ["submit", "--kubeconfig", api.kubeconfig, "--run-id", "trial-1"]
    assert run_cli(args, capsys)[0] == 0
    code, out, err = run_cli(args, capsys)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "run trial-1 was submitted before" in err and "pick another --run-id" in err


def test_submit_watch_follows_until_succeeded(api, capsys):
    with_template(api)
    gets = []

    def advance(path, obj):
        # Each GET moves the run forward: first 1 of 2 shards done, then everything succeeded.
        gets.append(path)
        retry = {"type": "Retry", "templateName": "predict", "children": ["p0a"], "phase": "Running"}
        nodes = {"prep": {"type": "Retry", "templateName": "prepare-from-dataset", "phase": "Succeeded", "children": ["pp"]},
                 "pp": {"type": "Pod", "templateName": "prepare-from-dataset", "phase": "Succeeded"},
                 "p0": retry, "p0a": {"type": "Pod", "templateName": "predict", "phase": "Running"}}  # fmt: skip
        obj["status"] = {"phase": "Running", "nodes": nodes} if len(gets) == 1 else {"phase": "Succeeded", "nodes": nodes}

    api.on_get = lambda path, obj: advance(path, obj) if "/workflows/" in path else None
    code, out, err = run_cli(
        ["submit", "--kubeconfig", api.kubeconfig, "--store", "s3://evals/receval", "--run-id", "w1", "--watch",
         "--poll-seconds", "0.01"], capsys)  # fmt: skip
    assert code == 0, err
    assert len(gets) == 2 and "Succeeded" in err and "prepare" in err


def test_submit_watch_fails_with_exit_2_when_the_run_fails(api, capsys):
    with_template(api)
    api.on_get = lambda path, obj: obj.__setitem__("status", {"phase": "Failed", "message": "child 'x' failed"})
    code, _, err = run_cli(
        ["submit", "--kubeconfig", api.kubeconfig, "--store", "s3://evals/receval", "--run-id", "w2", "--watch",
         "--poll-seconds", "0.01"], capsys)  # fmt: skip
    assert code == 2
    last = err.strip().splitlines()[-1]  # above it: the live progress view
    assert last.startswith("receval: error: ") and "ended Failed: child 'x' failed" in last


def test_schedule_creates_then_patches_then_suspends_and_deletes(api, capsys):
    base = ["schedule", "--kubeconfig", api.kubeconfig]
    code, out, err = run_cli([*base, "--at", "03:15", "--timezone", "Europe/Madrid"], capsys)
    assert code == 0, err
    other, read, create = api.requests
    assert_wire(other, "GET", f"{ARGO}/cronworkflows/receval-nightly", None)  # no second scheduler
    assert_wire(read, "GET", f"{BATCH}/cronjobs/receval-nightly", None)
    assert_wire(create, "POST", f"{BATCH}/cronjobs")
    assert_valid(create.body, "schedule create")
    # 03:15 → minute 15, hour 3
    assert create.body["spec"]["schedule"] == "15 3 * * *"
    assert create.body["spec"]["timeZone"] == "Europe/Madrid"
    assert "created" in out

    api.requests.clear()
    code, out, err = run_cli([*base, "--at", "04:00", "--algorithm", "pop"], capsys)
    assert code == 0, err
    _, read, patch = api.requests
    assert_wire(patch, "PATCH", f"{BATCH}/cronjobs/receval-nightly", "application/strategic-merge-patch+json")
    assert_valid(patch.body, "schedule patch")
    assert "suspend" not in patch.body["spec"]  # an update keeps a paused schedule paused
    stored = api.objects[f"{BATCH}/cronjobs/receval-nightly"]
    assert stored["spec"]["schedule"] == "0 4 * * *"
    assert stored["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"] == ["submit", "--nightly", "--algorithm=pop"]
    assert "updated" in out

    api.requests.clear()
    code, out, _ = run_cli([*base, "--suspend"], capsys)
    assert code == 0 and api.requests[-1].body == {"spec": {"suspend": True}}
    assert stored["spec"]["schedule"] == "0 4 * * *" and api.objects[f"{BATCH}/cronjobs/receval-nightly"]["spec"]["suspend"] is True
    code, out, _ = run_cli([*base, "--resume"], capsys)
    assert code == 0 and api.objects[f"{BATCH}/cronjobs/receval-nightly"]["spec"]["suspend"] is False

    code, out, _ = run_cli([*base, "--delete"], capsys)
    assert code == 0 and api.requests[-1].method == "DELETE" and "deleted" in out
    assert f"{BATCH}/cronjobs/receval-nightly" not in api.objects


def test_schedule_argo_cron_is_idempotent(api, capsys):
    base = ["schedule", "--kubeconfig", api.kubeconfig, "--argo-cron", "--at", "01:05", "--store", "s3://evals/nightly"]
    assert run_cli(base, capsys)[0] == 0
    assert run_cli(base, capsys)[0] == 0
    requests = [r for r in api.requests if "/cronworkflows" in r.path]
    methods = [(r.method, r.path.rsplit("/", 1)[-1]) for r in requests]
    assert methods == [("GET", "receval-nightly"), ("POST", "cronworkflows"), ("GET", "receval-nightly"), ("PATCH", "receval-nightly")]
    assert requests[3].content_type == "application/merge-patch+json"
    for r in (requests[1], requests[3]):
        assert_valid(r.body, "cron workflow")
    stored = api.objects[f"{ARGO}/cronworkflows/receval-nightly"]
    assert stored["spec"]["schedules"] == ["5 1 * * *"]
    params = {p["name"]: p for p in stored["spec"]["workflowSpec"]["arguments"]["parameters"]}
    assert params["store"]["value"] == "s3://evals/nightly" and params["run-id"]["value"].startswith("nightly-{{=")
    # the gate's rules come from the ConfigMap, as for the CronJob's submissions
    assert params["gate-rules"]["valueFrom"]["configMapKeyRef"]["key"] == "RECEVAL_GATE_RULES"


def test_status_joins_workflow_and_store(api, capsys, tmp_path):
    from receval.storage import open_store

    with_template(api)
    wf = manifests.workflow(manifests.PipelineParameters(run_id="r9", store="s3://evals/receval", shards=2,
                                                         algorithms=("pop",)))  # fmt: skip
    wf["status"] = {"phase": "Running", "nodes": {
        "a": {"type": "Retry", "templateName": "train", "phase": "Succeeded", "children": ["a1", "a2"]},
        "a1": {"type": "Pod", "templateName": "train", "phase": "Failed"},
        "a2": {"type": "Pod", "templateName": "train", "phase": "Succeeded"},
        "b": {"type": "Retry", "templateName": "predict", "phase": "Running", "children": []},
    }}  # fmt: skip
    api.put(f"{ARGO}/workflows", wf)
    store = tmp_path / "store"
    open_store(str(store)).write_json("runs/r9/run.json", {"status": "running", "updated_at": "2024-05-01T03:00:00Z"})
    code, out, err = run_cli(["status", "r9", "--kubeconfig", api.kubeconfig, "--store", str(store)], capsys)
    assert code == 0, err
    (listing,) = api.requests[-1:]
    assert listing.query["labelSelector"] == ["receval.io/run-id=r9"]
    lines = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") > 2}
    # train: the retried attempt counts once → 1/1; predict: 1 of 2 shards × 1 algorithm running
    assert "1/1" in lines["train"] and "0/2" in lines["predict"]
    assert "store: run r9: status running" in out

    code, out, _ = run_cli(["status", "r9", "--kubeconfig", api.kubeconfig, "--store", str(tmp_path / "empty")], capsys)
    assert code == 0 and "has no runs/r9/run.json" in out  # the store's absence is tolerated

    # the store is read as `receval results` reads it: "complete" without the run's marker is not complete
    open_store(str(store)).write_json("runs/r9/run.json", {"status": "complete", "created": "2024-05-01T03:00:00Z"})
    code, out, err = run_cli(["status", "r9", "--kubeconfig", api.kubeconfig, "--store", str(store)], capsys)
    assert code == 0 and "store: run r9: status complete (partial), created 2024-05-01T03:00:00+00:00" in out, out


@pytest.mark.parametrize(
    "setup, expected",
    [
        (lambda api: api.crd_missing(), "no Argo Workflows API"),
        (lambda api: api.failures.__setitem__(f"{ARGO}/workflows", (403, "Forbidden", 'workflows.argoproj.io is forbidden: User "system:serviceaccount:receval:x" cannot create resource')), "forbidden (403)"),
        (lambda api: None, "WorkflowTemplate receval-pipeline not found"),
    ],
    ids=["crd-not-installed", "forbidden", "template-missing"],
)
def test_submit_api_errors_are_one_line_exit_2(api, capsys, setup, expected):
    if expected != "WorkflowTemplate receval-pipeline not found":
        with_template(api)
    setup(api)
    code, out, err = run_cli(["submit", "--kubeconfig", api.kubeconfig, "--store", "s3://evals/receval", "--run-id", "r"], capsys)
    assert code == 2 and out == ""
    assert err.startswith("receval: error: ") and err.count("\n") == 1 and expected in err, err


def test_bad_token_is_one_line_exit_2(api, capsys, tmp_path):
    config = api.write_kubeconfig(tmp_path / "bad", token="wrong")
    code, _, err = run_cli(["schedule", "--kubeconfig", str(config), "--at", "02:00"], capsys)
    assert code == 2 and "(401)" in err and err.count("\n") == 1


def test_connection_refused_is_one_line_exit_2(api, capsys, tmp_path):
    with socket.socket() as s:  # a port that nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = tmp_path / "refused"
    config.write_text(Path(api.kubeconfig).read_text().replace(api.url, f"http://127.0.0.1:{port}"))
    code, _, err = run_cli(["status", "--kubeconfig", str(config)], capsys)
    assert code == 2 and "cannot reach the Kubernetes API" in err and err.count("\n") == 1


def test_bad_options_are_one_line_exit_2(capsys):
    code, _, err = run_cli(["schedule", "--at", "25:00"], capsys)
    assert code == 2 and "--at '25:00'" in err
    code, _, err = run_cli(["submit", "--store", "/local/path", "--run-id", "r", "--dry-run"], capsys)
    assert code == 2 and "s3://bucket/prefix" in err
    code, _, err = run_cli(["submit", "--store", "s3://evals/x", "--run-id", "bad id!", "--dry-run"], capsys)
    assert code == 2 and "--run-id" in err
    # the cutoffs' rule is the one of `receval run` and the configuration, not a pod's memory error
    code, _, err = run_cli(["submit", "--store", "s3://evals/x", "--run-id", "r", "--dry-run", "--cutoff",
                            "10000000000"], capsys)
    assert code == 2 and "--cutoff 10000000000: Input should be less than or equal to 100000" in err, err


def test_render_writes_valid_manifests(tmp_path, capsys):
    out_dir = tmp_path / "gitops"
    code, out, err = run_cli(
        ["render", "--out", str(out_dir), "--store", "s3://evals/receval", "--algorithm", "pop,ib", "--shards", "4",
         "--at", "23:45", "--namespace", "ml-eval", "--run-id", "r1", "--indexed-jobs"], capsys)  # fmt: skip
    assert code == 0, err
    files = sorted(out_dir.glob("*.yaml"))
    assert [str(f) for f in files] == sorted(out.split())
    docs = [yaml.safe_load(f.read_text()) for f in files]
    for doc in docs:
        assert_valid(doc, "rendered")
        assert doc["kind"] == "Namespace" or doc["metadata"]["namespace"] == "ml-eval"
    kinds = [d["kind"] for d in docs]
    assert kinds.count("Job") == 2 and "Secret" not in kinds and "CronJob" in kinds and "Workflow" in kinds
    (cron,) = [d for d in docs if d["kind"] == "CronJob"]
    assert cron["spec"]["schedule"] == "45 23 * * *"
    (template,) = [d for d in docs if d["kind"] == "WorkflowTemplate"]
    defaults = {p["name"]: p.get("value") for p in template["spec"]["arguments"]["parameters"]}
    assert defaults["shards"] == "4" and json.loads(defaults["algorithms"]) == ["pop", "ib"]
    (config,) = [d for d in docs if d["kind"] == "ConfigMap"]
    assert config["data"]["RECEVAL_ALGORITHMS"] == "pop,ib" and config["data"]["RECEVAL_SHARDS"] == "4"
    jobs = [d for d in docs if d["kind"] == "Job"]
    assert {j["spec"]["completions"] for j in jobs} == {4}


def test_one_scheduler_at_a_time(api, capsys):
    """Either scheduler suspends the other: following the docs never leaves two nightly runs."""
    base = ["schedule", "--kubeconfig", api.kubeconfig, "--at", "02:30"]
    assert run_cli([*base, "--argo-cron"], capsys)[0] == 0
    cron_workflow = f"{ARGO}/cronworkflows/receval-nightly"
    cronjob = f"{BATCH}/cronjobs/receval-nightly"
    assert not api.objects[cron_workflow]["spec"]["suspend"]

    code, out, err = run_cli(base, capsys)  # now the CronJob
    assert code == 0, err
    assert api.objects[cron_workflow]["spec"]["suspend"] is True and not api.objects[cronjob]["spec"]["suspend"]
    assert "CronWorkflow receval/receval-nightly suspended: one scheduler at a time" in out

    code, out, err = run_cli([*base, "--argo-cron"], capsys)  # and back: the suspended one must run again
    assert code == 0, err
    assert api.objects[cronjob]["spec"]["suspend"] is True and api.objects[cron_workflow]["spec"]["suspend"] is False

    code, out, err = run_cli(["schedule", "--kubeconfig", api.kubeconfig, "--resume"], capsys)  # resume the CronJob
    assert code == 0, err
    active = [not api.objects[path]["spec"]["suspend"] for path in (cronjob, cron_workflow)]
    assert active == [True, False]


def test_schedule_dry_run_prints_without_a_cluster(capsys):
    code, out, err = run_cli(["schedule", "--at", "03:00", "--timezone", "Europe/Madrid", "--dry-run"], capsys)
    assert code == 0, err
    doc = yaml.safe_load(out)
    assert_valid(doc, "schedule dry-run")
    assert doc["kind"] == "CronJob" and doc["spec"]["schedule"] == "0 3 * * *"
    code, out, err = run_cli(["schedule", "--argo-cron", "--at", "03:00", "--dry-run", "--shards", "2"], capsys)
    assert code == 0, err
    assert yaml.safe_load(out)["kind"] == "CronWorkflow"
    code, _, err = run_cli(["schedule", "--dry-run", "--algorithm", "ub+ib", "--at", "03:00"], capsys)
    assert code == 2 and "ub+ib" in err


@pytest.mark.parametrize("algorithms, message", [("pop,foo", "unknown algorithm 'foo'"), ("ub+ib", "'ub+ib'")])
def test_submit_refuses_what_run_refuses_before_sending(algorithms, message, capsys, tmp_path):
    code, out, err = run_cli(["submit", "--store", "s3://evals/x", "--run-id", "r1", "--algorithm", algorithms, "--dry-run"], capsys)
    assert code == 2 and out == "" and message in err and err.count("\n") == 1
    code, _, err = run_cli(["run", "--store", str(tmp_path / "s"), "--algorithm", algorithms], capsys)
    assert code == 2 and message in err
    # With a configuration the labels are the file's (e.g. ub-50): only their syntax is checked here.
    code, out, _ = run_cli(["submit", "--store", "s3://evals/x", "--run-id", "r1", "--config", "s3://evals/c.yaml",
                            "--algorithm", "ub-50", "--dry-run"], capsys)  # fmt: skip
    assert code == 0 and "ub-50" in out


def test_render_refuses_a_namespace_that_is_a_path(tmp_path, capsys):
    """--namespace is also a file-name part: 'x/../../pwned' used to write outside --out."""
    out_dir = tmp_path / "deep" / "out"
    code, out, err = run_cli(["render", "--out", str(out_dir), "--namespace", "x/../../pwned"], capsys)
    assert code == 2 and "--namespace 'x/../../pwned'" in err and err.count("\n") == 1
    assert list(tmp_path.rglob("*.yaml")) == [] and not out_dir.exists()
    code, _, err = run_cli(["render", "--out", str(out_dir), "--image-registry", "ghcr.io/x:latest"], capsys)
    assert code == 2 and "--image-registry" in err


def test_render_defaults_are_run_defaults_and_the_run_workflow_has_a_fixed_name(tmp_path, capsys):
    from receval.config import RunConfig

    code, _, err = run_cli(["render", "--out", str(tmp_path), "--store", "s3://evals/x", "--run-id", "r1"], capsys)
    assert code == 0, err
    docs = {d["kind"]: d for d in (yaml.safe_load(p.read_text()) for p in tmp_path.glob("*.yaml"))}
    defaults = {p["name"]: p.get("value") for p in docs["WorkflowTemplate"]["spec"]["arguments"]["parameters"]}
    run = RunConfig()
    assert json.loads(defaults["algorithms"]) == [a.label for a in run.algorithms]
    assert defaults["shards"] == str(run.shards) and defaults["cutoffs"] == ",".join(map(str, run.evaluation.cutoffs))
    assert docs["ConfigMap"]["data"]["RECEVAL_SHARDS"] == str(run.shards)
    # kubectl apply needs metadata.name: the run's Workflow is named after its run id
    workflow = docs["Workflow"]
    assert "generateName" not in workflow["metadata"]
    assert workflow["metadata"]["name"] == manifests.workflow_name("r1") and len(workflow["metadata"]["name"]) <= 63


def test_image_digests_pin_the_pods_images(tmp_path, capsys):
    digest = "sha256:" + "ab" * 32
    code, out, err = run_cli(["submit", "--store", "s3://evals/x", "--run-id", "r1", "--dry-run",
                              "--image-digest", f"evaluate={digest}"], capsys)  # fmt: skip
    assert code == 0, err
    params = {p["name"]: p["value"] for p in yaml.safe_load(out)["spec"]["arguments"]["parameters"]}
    assert params["evaluate-image-digest"] == f"@{digest}"
    template = manifests.workflow_template()
    (evaluate,) = argo_dag.pipeline_steps(template, {**params, "shards": "1", "algorithms": '["pop"]'})[-2:-1]
    images = {t["name"]: argo_dag._substitute(t["container"]["image"], {f"workflow.parameters.{k}": v for k, v in
              (manifests._template_defaults(template) | params).items()}) for t in template["spec"]["templates"] if "container" in t}  # fmt: skip
    assert images["evaluate"] == f"ghcr.io/receval/receval-evaluate:0.1.0@{digest}"
    assert images["train"] == "ghcr.io/receval/receval-train:0.1.0"
    code, _, err = run_cli(["render", "--out", str(tmp_path), "--store", "s3://evals/x", "--run-id", "r1",
                            "--indexed-jobs", "--algorithm", "pop", "--image-digest", f"evaluate={digest}"], capsys)  # fmt: skip
    assert code == 0, err
    (job,) = [yaml.safe_load(p.read_text()) for p in tmp_path.glob("*-job-*.yaml")]
    assert job["spec"]["template"]["spec"]["containers"][0]["image"].endswith(f"receval-evaluate:0.1.0@{digest}")
    for bad in ("evaluate=sha256:abc", "gpu=" + digest, digest):
        code, _, err = run_cli(["submit", "--store", "s3://evals/x", "--run-id", "r1", "--dry-run", "--image-digest", bad], capsys)
        assert code == 2 and "--image-digest" in err


def test_shards_are_capped(capsys):
    code, _, err = run_cli(["submit", "--store", "s3://evals/x", "--run-id", "r1", "--shards", str(manifests.MAX_SHARDS + 1), "--dry-run"], capsys)
    assert code == 2 and f"between 1 and {manifests.MAX_SHARDS}" in err
    assert run_cli(["submit", "--store", "s3://evals/x", "--run-id", "r1", "--shards", str(manifests.MAX_SHARDS), "--dry-run"], capsys)[0] == 0


def test_a_namespace_that_is_a_path_never_reaches_the_api(api, capsys):
    code, _, err = run_cli(["status", "--kubeconfig", api.kubeconfig, "--namespace", "receval/../kube-system"], capsys)
    assert code == 2 and "--namespace" in err and api.requests == []


def test_status_knows_every_step_template_of_the_workflow():
    """`receval status` counts pods by template name: a template added to the WorkflowTemplate
    (as prepare-finish was) and not to STEP_TEMPLATES would silently drop out of the progress."""
    from receval.cluster.client import STEP_TEMPLATES

    template = yaml.safe_load((Path(__file__).resolve().parents[1] / "argo" / "workflowtemplate.yaml").read_text())
    known = {name: step for step, names in STEP_TEMPLATES.items() for name in names}
    for t in template["spec"]["templates"]:
        container = t.get("container")
        if not container or container.get("command") != ["receval"]:
            continue
        subcommand = container["args"][0]
        if subcommand in STEP_TEMPLATES:
            assert known.get(t["name"]) == subcommand, f"template {t['name']} ({subcommand}) unknown to status"


def test_cluster_commands_take_algorithms_and_cutoffs_as_every_command_does(capsys):
    """--algorithm and --cutoff repeat and take comma lists in submit/schedule/render, as in run."""
    code, out, err = run_cli(["submit", "--store", "s3://evals/receval", "--run-id", "r1", "--dry-run",
                              "--algorithm", "pop", "--algorithm", "ub,ib", "--cutoff", "5", "--cutoff", "10,20"], capsys)
    assert code == 0, err
    params = {p["name"]: p["value"] for p in yaml.safe_load(out)["spec"]["arguments"]["parameters"]}
    assert json.loads(params["algorithms"]) == ["pop", "ub", "ib"] and params["cutoffs"] == "5,10,20", params
