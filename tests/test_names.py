"""One rule per kind of name (receval.names), used by the run folder, the manifests and the CLI."""

from __future__ import annotations

import re

import pytest

from receval import names
from receval.cluster import manifests
from receval.errors import ConfigError
from receval.pipeline import layout

# Kubernetes' own IsDNS1123Label (k8s.io/apimachinery/pkg/util/validation), written out independently.
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@pytest.mark.parametrize("value", ["x/../../pwned", "../x", "UPPER", "-x", "x-", "a" * 64, "", "a_b", "a.b"])
def test_namespaces_must_be_dns_labels(value):
    with pytest.raises(ConfigError, match="--namespace"):
        names.check_namespace(value)


@pytest.mark.parametrize("value", ["receval", "ml-eval", "a", "a" * 63, "x1-2"])
def test_dns_label_namespaces_are_accepted(value):
    assert names.check_namespace(value) == value and DNS1123_LABEL.match(value)


@pytest.mark.parametrize(
    "registry",
    ["ghcr.io/receval", "registry.example.com:5000/ml/receval", "localhost:5000/x", "receval", "docker.io/library"],
)
def test_image_registries(registry):
    assert names.check_image_registry(registry) == registry


@pytest.mark.parametrize(
    "registry", ["ghcr.io/receval:0.1", "ghcr.io/Receval", "ghcr.io/x@sha256:ab", "a b", "ghcr.io//x", "x/", "$(evil)"]
)
def test_bad_image_registries_are_refused(registry):
    with pytest.raises(ConfigError, match="--image-registry"):
        names.check_image_registry(registry)


def test_object_names_fit_63_characters_never_end_in_a_dash_and_stay_apart():
    long_run = "nightly-" + "x" * 55  # a 63-character run id, the longest allowed
    a = names.object_name("receval-evaluate", long_run, "ub-50")
    b = names.object_name("receval-evaluate", long_run, "ub-51")
    assert a != b and len(a) <= 63 and len(b) <= 63
    for name in (a, b, names.object_name("receval-evaluate", "r" * 40 + "-" * 10 + "q", "pop")):
        assert DNS1123_LABEL.match(name), name
    # stable: the same parts always give the same name (a second submission collides on purpose)
    assert names.object_name("receval", "r1") == names.object_name("receval", "r1")


def test_the_run_folder_and_the_manifests_share_the_rules():
    # the run folder's keys and the manifests check labels by names.check_label: what one refuses, so does the other
    for bad in ("ub+ib", "a/b", "..", "x..y"):
        with pytest.raises(ConfigError):
            layout.model_prefix("r1", bad)
        with pytest.raises(ConfigError):
            manifests.PipelineParameters(algorithms=(bad,))
    with pytest.raises(ConfigError, match="--run-id"):
        manifests.PipelineParameters(run_id="r" * 64)  # a label value holds 63


def test_indexed_job_names_are_at_most_63_characters():
    """Today's slug reached 67 characters ('receval-evaluate-' + 50) and could end in '-'."""
    run_id = "nightly-20240501-" + "long-experiment-name-" * 2  # 59 characters
    for algorithm in ("pop", "ub-50-neighbours-cosine", "x" * 40):
        params = manifests.PipelineParameters(run_id=run_id[:63].rstrip("-"), store="s3://bucket/p")
        name = manifests.indexed_evaluate_job(params, algorithm)["metadata"]["name"]
        assert len(name) <= 63 and DNS1123_LABEL.match(name), name
        assert name.startswith("receval-evaluate-nightly-20240501")
