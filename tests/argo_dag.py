"""A small interpreter of the Argo WorkflowTemplate's DAG, for the tests only: the pods the
entrypoint would run, in an order the DAG allows, with their argv and literal env values.

It reads the very template the package ships (``receval.cluster.manifests.workflow_template``), so
the local DAG test, the image tests and the gate test run what Argo would run. The product never
interprets its own template (Argo does); hence it lives under ``tests/``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from receval.cluster.manifests import PipelineParameters, _template_defaults
from receval.errors import ConfigError


@dataclass(frozen=True)
class PipelineStep:
    """One pod of the pipeline: the task's path in the DAG, its argv and its literal env values."""

    task: str
    argv: tuple[str, ...]
    env: Mapping[str, str]


_VARIABLE = re.compile(r"\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}")
_CONDITION = re.compile(r"\s*'(.*)'\s*(==|!=)\s*'(.*)'\s*")
_DEPENDENCY = re.compile(r"([A-Za-z0-9_-]+)(?:\.[A-Za-z]+)?")


def _substitute(text: str, scope: Mapping[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in scope:
            raise ConfigError(f"WorkflowTemplate: {{{{{name}}}}} has no value; is the parameter missing?")
        return scope[name]

    return _VARIABLE.sub(value, text)


def _when(condition: str | None, scope: Mapping[str, str]) -> bool:
    if condition is None:
        return True
    m = _CONDITION.fullmatch(_substitute(condition, scope))
    if not m:
        raise ConfigError(f"WorkflowTemplate: cannot evaluate when: {condition!r} (only 'a' == 'b' and 'a' != 'b')")
    left, op, right = m.groups()
    return (left == right) == (op == "==")


def _ordered_tasks(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tasks in a topological order of their ``depends``/``dependencies``, ties kept in file order."""
    names = {t["name"] for t in tasks}
    needs = {
        t["name"]: (
            {d for d in _DEPENDENCY.findall(t.get("depends", "")) if d in names} | set(t.get("dependencies", []))
        )
        for t in tasks
    }
    done: list[dict[str, Any]] = []
    pending = list(tasks)
    while pending:
        ready = next((t for t in pending if needs[t["name"]] <= {d["name"] for d in done}), None)
        if ready is None:
            raise ConfigError(f"WorkflowTemplate: dependency cycle among {[t['name'] for t in pending]}")
        done.append(ready)
        pending.remove(ready)
    return done


def _items(task: Mapping[str, Any], scope: Mapping[str, str]) -> list[str | None]:
    if "withParam" in task:
        return [item if isinstance(item, str) else json.dumps(item) for item in json.loads(_substitute(task["withParam"], scope))]
    if "withSequence" in task:
        sequence = task["withSequence"]
        if "count" in sequence:
            start, count = int(_substitute(str(sequence.get("start", 0)), scope)), int(_substitute(str(sequence["count"]), scope))
            return [str(i) for i in range(start, start + count)]
        start, end = int(_substitute(str(sequence.get("start", 0)), scope)), int(_substitute(str(sequence["end"]), scope))
        return [str(i) for i in range(start, end + 1)]
    if "withItems" in task:
        return [item if isinstance(item, str) else json.dumps(item) for item in task["withItems"]]
    return [None]


def _run_template(
    templates: Mapping[str, Mapping[str, Any]], name: str, scope: dict[str, str], path: str, out: list[PipelineStep]
) -> None:
    template = templates[name]
    if "dag" in template:
        for task in _ordered_tasks(template["dag"]["tasks"]):
            for item in _items(task, scope):
                task_scope = dict(scope)
                if item is not None:
                    task_scope["item"] = item
                if not _when(task.get("when"), task_scope):
                    continue
                inputs = {
                    f"inputs.parameters.{p['name']}": _substitute(str(p.get("value", "")), task_scope)
                    for p in task.get("arguments", {}).get("parameters", [])
                }
                child = {k: v for k, v in scope.items() if not k.startswith("inputs.")} | inputs
                label = task["name"] if item is None else f"{task['name']}({item})"
                _run_template(templates, task["template"], child, f"{path}.{label}" if path else label, out)
    elif "container" in template:
        container = template["container"]
        argv = [_substitute(str(a), scope) for a in [*container.get("command", []), *container.get("args", [])]]
        env = {e["name"]: _substitute(str(e["value"]), scope) for e in container.get("env", []) if "value" in e}
        out.append(PipelineStep(task=path, argv=tuple(argv), env=env))
    else:
        raise ConfigError(f"WorkflowTemplate: template {name!r} is neither a dag nor a container")


def pipeline_steps(template: Mapping[str, Any], params: PipelineParameters | Mapping[str, str]) -> list[PipelineStep]:
    """The pods the WorkflowTemplate's entrypoint would run, in an order its DAG allows.

    Fan-outs are expanded in order (``withParam``, ``withSequence``), ``when`` conditions are
    evaluated and ``{{...}}`` parameters substituted from ``params`` over the template's defaults.
    The exit handler is not included (it runs only when the workflow fails).
    """
    given = params.arguments() if isinstance(params, PipelineParameters) else dict(params)
    values = _template_defaults(template) | given
    declared = {p["name"] for p in template["spec"]["arguments"]["parameters"]}
    missing = sorted(declared - values.keys())
    if missing:
        raise ConfigError(f"WorkflowTemplate parameters without a value: {', '.join(missing)}")
    scope = {f"workflow.parameters.{k}": v for k, v in values.items()}
    templates = {t["name"]: t for t in template["spec"]["templates"]}
    out: list[PipelineStep] = []
    _run_template(templates, template["spec"]["entrypoint"], scope, "", out)
    return out


def step_commands(template: Mapping[str, Any], params: PipelineParameters | Mapping[str, str]) -> list[list[str]]:
    """Argv lists of :func:`pipeline_steps`, e.g. ``[["receval", "prepare", "--store", ...], ...]``."""
    return [list(step.argv) for step in pipeline_steps(template, params)]
