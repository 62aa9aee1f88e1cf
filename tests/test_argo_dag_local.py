"""The Argo WorkflowTemplate's pods, run on this machine: manifests and code cannot drift apart.

The step commands come from the RENDERED template (``receval.cluster.argo_dag.pipeline_steps``:
the DAG's fan-outs expanded, ``when`` evaluated, parameters substituted), and each runs as a
subprocess with the environment its pod would get: the template's literal values, the S3 keys
through the ``receval-s3`` Secret's keys, the endpoint and region through the ``receval-config``
ConfigMap's keys (``k8s/base/configmap.yaml``, with ``AWS_ENDPOINT_URL`` set as for any non-AWS
store), and ``/tmp`` as the pod's emptyDir. The run folder they leave in a real S3 server (rclone)
must hold the summary that ``receval run`` computes from the same configuration into another
prefix, every record to 1e-12.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from receval.cluster import manifests
from tests import argo_dag
from receval.config import RunConfig
from tests.s3_servers import S3Server

# Small data. The configuration names three of the template's default algorithms (`receval run`'s
# seven: the e2e run stays short; the test below checks the defaults themselves), and one cutoff
# that the template's `cutoffs` parameter replaces (see below).
CONFIG = {
    "dataset": {"name": "synthetic", "synthetic": {"n_users": 300, "n_items": 200, "interactions_per_user": 20}},
    "algorithms": ["pop", "ub", "ib"],
    "evaluation": {"cutoffs": [10]},
    "shards": 2,
    "seed": 3,
}
SHARDS = 2
CUTOFFS = (5, 10)  # the template hands these to prepare as RECEVAL_CUTOFFS, over the file's [10]
STEP_TIMEOUT = 180


def pod_env(template: dict[str, Any], step: argo_dag.PipelineStep, server: S3Server, pod_tmp: Path) -> dict[str, str]:
    """The environment of the pod that runs ``step``, resolved as the kubelet would.

    ``value`` entries come from the rendered step; ``secretKeyRef`` from the receval-s3 Secret
    (the shape of ``k8s/secret.example.yaml``, holding the server's key pair); ``configMapKeyRef``
    from the shipped receval-config ConfigMap plus ``AWS_ENDPOINT_URL`` (docs/deploy.md: set it for
    non-AWS S3). A reference to a key that does not exist fails, unless it is ``optional``. Paths
    under a volume mount (``/tmp``, the emptyDir) are mapped to a folder of the test.
    """
    secret = manifests.load_document("k8s/secret.example.yaml")
    secret["stringData"] = {"AWS_ACCESS_KEY_ID": server.access_key, "AWS_SECRET_ACCESS_KEY": server.secret_key}
    configmap = manifests.load_document("k8s/base/configmap.yaml")
    configmap["data"]["AWS_ENDPOINT_URL"] = server.endpoint_url
    sources = {
        "secretKeyRef": (secret["metadata"]["name"], secret["stringData"]),
        "configMapKeyRef": (configmap["metadata"]["name"], configmap["data"]),
    }
    command = step.argv[1]
    containers = [
        t["container"] for t in template["spec"]["templates"]
        if "container" in t and t["container"].get("args", [None])[0] == command
    ]  # fmt: skip
    assert containers, f"no container template runs `receval {command}`"
    # prepare has three templates (a part from a config, the finish, from a dataset); their env must be the same.
    assert all(c.get("env") == containers[0].get("env") for c in containers)
    container = containers[0]
    mounts = {m["mountPath"]: pod_tmp / m["name"] for m in container.get("volumeMounts", [])}
    env: dict[str, str] = {}
    for entry in container.get("env", []):
        name = entry["name"]
        if "value" in entry:
            value = step.env[name]
        elif "resourceFieldRef" in entry["valueFrom"]:
            value = str(_resource_field(container, entry["valueFrom"]["resourceFieldRef"]))
        else:
            (kind, ref), = entry["valueFrom"].items()
            source_name, data = sources[kind]
            assert ref["name"] == source_name, f"{name}: {kind} names {ref['name']!r}, the object is {source_name!r}"
            if ref["key"] not in data:
                assert ref.get("optional"), f"{name}: {source_name} has no key {ref['key']!r}"
                continue
            value = data[ref["key"]]
        for mount_path, local in mounts.items():
            if value == mount_path or value.startswith(mount_path + "/"):
                value = str(local) + value[len(mount_path):]
        env[name] = value
    for local in mounts.values():
        local.mkdir(parents=True, exist_ok=True)
    # The image's PATH; nothing else of this process (no AWS_*, no RECEVAL_*) reaches the pod, but the code
    # under test does (an image installs its own code; here PYTHONPATH may point at this checkout).
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **code_env(), **env}


def code_env() -> dict[str, str]:
    """PYTHONPATH, when set: how this checkout's code is installed here (pods and the reference run alike)."""
    return {"PYTHONPATH": os.environ["PYTHONPATH"]} if os.environ.get("PYTHONPATH") else {}


def _resource_field(container: dict[str, Any], ref: dict[str, Any]) -> int:
    """A downward-API resourceFieldRef as the kubelet resolves it: the quantity / divisor, rounded up."""
    import math

    assert ref["resource"] == "limits.cpu" and str(ref.get("divisor", "1")) == "1", ref
    cpu = str(container["resources"]["limits"]["cpu"])
    cores = int(cpu[:-1]) / 1000 if cpu.endswith("m") else float(cpu)
    return max(1, math.ceil(cores))


def run_pod(step: argo_dag.PipelineStep, env: dict[str, str]) -> None:
    # The container's command is the `receval` entry point; run it with this interpreter.
    assert step.argv[0] == "receval", step.argv
    result = subprocess.run([sys.executable, "-m", "receval", *step.argv[1:]], env=env, capture_output=True,
                            text=True, timeout=STEP_TIMEOUT)  # fmt: skip
    assert result.returncode == 0, f"{step.task}: exit {result.returncode}\n{result.stderr}"


def fan_out_waves(steps: list[argo_dag.PipelineStep]) -> list[list[list[argo_dag.PipelineStep]]]:
    """The steps as waves of concurrent branches, as Argo schedules them.

    Consecutive steps under the same top-level DAG task form one wave; the children of a fan-out
    (``algorithm(pop)``, ``algorithm(ub)``, ...) depend on nothing of each other, so each is a
    branch that runs its own steps in their order, beside the other branches.
    """
    waves: list[dict[str, list[argo_dag.PipelineStep]]] = []
    last_task = None
    for step in steps:
        top = step.task.split(".")[0]
        task = top.split("(")[0]
        if task != last_task:
            waves.append({})
            last_task = task
        waves[-1].setdefault(top, []).append(step)
    return [list(branches.values()) for branches in waves]


def read_json(server: S3Server, bucket: str, key: str) -> Any:
    return json.loads(server.client().get_object(Bucket=bucket, Key=key)["Body"].read())


def keyed(records: list[dict]) -> dict[tuple, Any]:
    return {(r["algorithm"], r["kind"], r["metric"], r.get("key"), r.get("cutoff")): r["value"] for r in records}


def test_template_defaults_name_algorithms_and_a_dataset_a_pod_can_use():
    """The defaults a `receval submit` without options runs: every default algorithm is a
    recommender the run's configuration knows, the default dataset needs no data volume, and they
    are `receval run`'s defaults (RunConfig), so a run without options is the same everywhere."""
    template = manifests.workflow_template()
    defaults = {p["name"]: p.get("value") for p in template["spec"]["arguments"]["parameters"]}
    algorithms = json.loads(defaults["algorithms"])
    run = RunConfig()
    assert algorithms == [a.label for a in run.algorithms]
    assert defaults["shards"] == str(run.shards) and defaults["cutoffs"] == ",".join(map(str, run.evaluation.cutoffs))
    # prepare-from-dataset records the default configuration; train looks each label up in it.
    default_config = RunConfig.from_mapping({"dataset": {"name": defaults["dataset"]}})
    for algorithm in algorithms:
        assert default_config.algorithm(algorithm).name == algorithm
    # The images ship no datasets (their licenses forbid it) and the template mounts none.
    assert defaults["dataset"] == "synthetic"
    # The nightly CronJob submits with the ConfigMap's values: they repeat the template's defaults.
    config = manifests.load_document("k8s/base/configmap.yaml")["data"]
    assert config["RECEVAL_ALGORITHMS"].split(",") == algorithms
    assert config["RECEVAL_DATASET"] == defaults["dataset"]
    assert config["RECEVAL_SHARDS"] == defaults["shards"] and config["RECEVAL_CUTOFFS"] == defaults["cutoffs"]


def test_pods_of_the_rendered_template_give_the_values_of_receval_run(rclone_server: S3Server, tmp_path: Path):
    server = rclone_server
    bucket = server.make_bucket()
    config_file = tmp_path / "small.yaml"
    config_file.write_text(yaml.safe_dump(CONFIG), encoding="utf-8")
    server.client().put_object(Bucket=bucket, Key="configs/small.yaml", Body=config_file.read_bytes())

    template = manifests.workflow_template()
    parameters = {p["name"]: p.get("value") for p in template["spec"]["arguments"]["parameters"]}
    defaults = CONFIG["algorithms"]
    assert set(defaults) <= set(json.loads(parameters["algorithms"])), "the test runs default algorithms"
    params = manifests.PipelineParameters(
        run_id="argo-run", store=f"s3://{bucket}/argo", config_uri=f"s3://{bucket}/configs/small.yaml",
        shards=SHARDS, cutoffs=CUTOFFS, algorithms=tuple(defaults),
    )
    steps = argo_dag.pipeline_steps(template, params)
    # The DAG, written out by hand: prepare (from the config: its one part, prepare-parts = 1 by
    # default, then the finish), per algorithm train → predict shards → evaluate shards, then aggregate.
    expected = [["prepare", "0/1"], ["prepare", "finish"]]
    for algorithm in defaults:
        expected += [["train", algorithm]]
        expected += [[kind, algorithm, f"{i}/{SHARDS}"] for kind in ("predict", "evaluate") for i in range(SHARDS)]
    expected += [["aggregate"]]

    def coordinates(argv: tuple[str, ...]) -> list[str]:
        if argv[-1] == "--finish":
            return [argv[1], "finish"]
        options = dict(zip(argv[2::2], argv[3::2]))
        return [argv[1], *(options[o] for o in ("--algorithm", "--shard", "--part") if o in options)]

    assert [coordinates(s.argv) for s in steps] == expected

    def run_branch(branch: list[argo_dag.PipelineStep]) -> None:
        for step in branch:
            # One emptyDir per pod, as on the cluster.
            run_pod(step, pod_env(template, step, server, tmp_path / "pods" / step.task))

    waves = fan_out_waves(steps)
    # prepare part | prepare finish | one branch per algorithm | aggregate
    assert [len(w) for w in waves] == [1, 1, len(defaults), 1]
    for wave in waves:
        with ThreadPoolExecutor(max_workers=len(wave)) as pool:
            for future in [pool.submit(run_branch, branch) for branch in wave]:
                future.result()

    # The same configuration through `receval run` into another prefix of the same bucket.
    reference = subprocess.run(
        [sys.executable, "-m", "receval", "run", "--config", str(config_file), "--store", f"s3://{bucket}/local",
         "--run-id", "local-run", "--shards", str(SHARDS), "--cutoff", ",".join(map(str, CUTOFFS)),
         "--workers", "1", "--format", "json"],
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), **code_env(), **server.env()},
        capture_output=True, text=True, timeout=STEP_TIMEOUT,
    )  # fmt: skip
    assert reference.returncode == 0, reference.stderr

    argo_meta = read_json(server, bucket, "argo/runs/argo-run/run.json")
    local_meta = read_json(server, bucket, "local/runs/local-run/run.json")
    assert argo_meta["status"] == local_meta["status"] == "complete"
    assert argo_meta["config"] == local_meta["config"]  # one resolved configuration
    assert argo_meta["cutoffs"] == list(CUTOFFS) and argo_meta["shards"] == SHARDS
    assert argo_meta["algorithms"] == defaults
    server.client().head_object(Bucket=bucket, Key="argo/runs/argo-run/_SUCCESS")

    argo = keyed(read_json(server, bucket, "argo/runs/argo-run/summary.json"))
    local = keyed(read_json(server, bucket, "local/runs/local-run/summary.json"))
    assert argo.keys() == local.keys()
    assert {k[0] for k in argo} == set(defaults) and {k[4] for k in argo if k[1] == "metric"} == set(CUTOFFS)
    metric_values = 0
    for key, value in local.items():
        if value is None:
            assert argo[key] is None, key
            continue
        assert argo[key] is not None and abs(argo[key] - value) <= 1e-12, (key, argo[key], value)
        metric_values += key[1] == "metric"
    assert metric_values > 50  # every algorithm × metric × cutoff, not a handful


@pytest.mark.parametrize("command", ["prepare", "train", "predict", "evaluate", "aggregate", "results", "mark-failed"])
def test_every_step_pod_gets_credentials_and_endpoint(command: str, rclone_server: S3Server, tmp_path: Path):
    """Each step template wires the same S3 settings; a template without them would fail only on
    a cluster (mark-failed included: the exit handler must reach the store too)."""
    template = manifests.workflow_template()
    (container,) = [
        t["container"] for t in template["spec"]["templates"]
        if "container" in t and t["container"]["args"][0] == command
        and t["name"] not in ("prepare-from-config", "prepare-finish")
    ]  # fmt: skip
    step = argo_dag.PipelineStep(task=command, argv=("receval", command),
                                  env={e["name"]: e["value"] for e in container["env"] if "value" in e})
    env = pod_env(template, step, rclone_server, tmp_path)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION"):
        assert env.get(name) == rclone_server.env()[name], name


# -- the regression gate step ------------------------------------------------------------------------

GATE_RULES = "ndcg@10: drop <= 0.005 at p < 0.05; precision@10: drop <= 2%"


def run_gate_pod(step: argo_dag.PipelineStep, env: dict[str, str], termination_log: Path) -> subprocess.CompletedProcess:
    """The gate pod; the kubelet's /dev/termination-log is a file of the test."""
    argv = [str(termination_log) if a == "/dev/termination-log" else a for a in step.argv[1:]]
    return subprocess.run([sys.executable, "-m", "receval", *argv], env=env, capture_output=True, text=True,
                          timeout=STEP_TIMEOUT)  # fmt: skip


def test_gate_step_of_the_rendered_template_fails_the_night_that_regressed(rclone_server: S3Server, tmp_path: Path):
    """Two nights through the rendered DAG with `gate-rules` set: night 1 has no baseline (gate exit 0),
    night 2 runs RND under the label pop and its gate pod exits 3 with a termination message naming pop."""
    from tests.schema_validation import assert_valid

    server = rclone_server
    bucket = server.make_bucket()
    template = manifests.workflow_template()
    nights = {"night-1": ["pop"], "night-2": [{"name": "rnd", "label": "pop"}]}
    outcomes = {}
    for run_id, algorithms in nights.items():
        config = {**CONFIG, "algorithms": algorithms, "shards": 1, "evaluation": {"cutoffs": [10], "metrics": ["precision", "ndcg"]}}
        server.client().put_object(Bucket=bucket, Key=f"configs/{run_id}.yaml", Body=yaml.safe_dump(config).encode())
        params = manifests.PipelineParameters(
            run_id=run_id, store=f"s3://{bucket}/nightly", config_uri=f"s3://{bucket}/configs/{run_id}.yaml",
            shards=1, algorithms=("pop",), cutoffs=(10,), gate_rules=GATE_RULES,
        )  # fmt: skip
        # What `receval submit` creates and what a GitOps render ships, against the real schemas.
        assert_valid(manifests.workflow(params, namespace="receval"), "workflow with gate-rules")
        assert_valid(manifests.configured_workflow_template(params, namespace="receval"), "template with gate-rules")
        steps = argo_dag.pipeline_steps(template, params)
        # prepare part 0/1 and its finish, one algorithm on one shard, aggregate, then the gate
        assert [s.argv[1] for s in steps] == ["prepare", "prepare", "train", "predict", "evaluate", "aggregate", "results"]
        gate = steps[-1]
        assert gate.task == "gate" and gate.argv[1:] == (
            "results", "gate", f"s3://{bucket}/nightly", run_id, "--rule", GATE_RULES,
            "--message-file", "/dev/termination-log",
        )  # fmt: skip
        for step in steps[:-1]:  # one branch per wave here: one algorithm, one shard
            run_pod(step, pod_env(template, step, server, tmp_path / run_id / step.task))
        log = tmp_path / run_id / "termination-log"
        done = run_gate_pod(gate, pod_env(template, gate, server, tmp_path / run_id / "gate"), log)
        outcomes[run_id] = (done.returncode, log.read_text().strip() if log.exists() else "", done.stderr)

    code, message, stderr = outcomes["night-1"]
    assert code == 0, stderr
    assert message.startswith("gate night-1: no baseline")
    code, message, stderr = outcomes["night-2"]
    assert code == 3, stderr
    assert message.startswith("gate night-2 vs night-1: regression in ") and " worst: pop " in message
    assert "(rule 'ndcg@10: drop <= 0.005 at p < 0.05')" in message or "(rule 'precision@10: drop <= 2%')" in message
    gate_doc = read_json(server, bucket, "nightly/runs/night-2/gate/gate.json")
    server.client().head_object(Bucket=bucket, Key="nightly/runs/night-2/gate/_SUCCESS")
    assert gate_doc["status"] == "regression" and gate_doc["message"] == message
    # The gate does not retry its verdict: exit 3 (like 2) is outside its retry expression.
    (gate_template,) = [t for t in template["spec"]["templates"] if t["name"] == "gate"]
    assert "!= 3" in gate_template["retryStrategy"]["expression"]
