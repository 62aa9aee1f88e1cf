"""What admission does to a pod in the receval namespace, encoded from the published rules.

No policy engine that implements Pod Security Admission installs here (PyPI and npm have no
Kyverno CLI or PSA library; the one "PSS auditor" on PyPI, k8s-policy-guard 1.0.0, is a heuristic
linter, not the admission rules). So this module encodes, control by control:

- **Pod Security Standards, ``restricted`` profile, policy version v1.29** (the minimum Kubernetes
  this project supports; the namespace enforces ``latest``, whose restricted profile has the same
  controls up to v1.33): https://kubernetes.io/docs/concepts/security/pod-security-standards/ ,
  implemented upstream in k8s.io/pod-security-admission/policy/check_*.go. ``restricted`` is
  ``baseline`` plus its own controls; every control applies to containers, initContainers and
  ephemeralContainers.
- **ResourceQuota admission** (k8s.io/kubernetes/pkg/quota/v1/evaluator/core/pods.go): when a quota
  tracks ``requests.cpu``/``limits.memory``/..., every container and init container must declare
  that resource, else the pod is refused with "must specify ...".
- **LimitRanger** (plugin/pkg/admission/limitranger), which runs before the quota: a container
  without a limit gets the LimitRange's ``default``; without a request, its ``defaultRequest``, or
  else its (defaulted) limit.

Each checker returns a list of violation strings (empty: admitted), so a test shows every reason.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import Any

PSS_VERSION = "v1.29"

# baseline: "Capabilities" — adding beyond this list is forbidden.
_BASELINE_CAPABILITIES = frozenset(
    {"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
     "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}
)  # fmt: skip
# baseline: "Sysctls" — the safe set of v1.29.
_SAFE_SYSCTLS = frozenset(
    {"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
     "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
     "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
     "net.ipv4.tcp_keepalive_probes"}
)  # fmt: skip
_SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t"})
# restricted: "Volume Types".
_RESTRICTED_VOLUMES = frozenset(
    {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"}
)
_VOLUME_SOURCE_KEYS = frozenset(
    {"awsElasticBlockStore", "azureDisk", "azureFile", "cephfs", "cinder", "configMap", "csi", "downwardAPI",
     "emptyDir", "ephemeral", "fc", "flexVolume", "flocker", "gcePersistentDisk", "gitRepo", "glusterfs",
     "hostPath", "iscsi", "nfs", "persistentVolumeClaim", "photonPersistentDisk", "portworxVolume", "projected",
     "quobyte", "rbd", "scaleIO", "secret", "storageos", "vsphereVolume", "image"}
)  # fmt: skip


def _containers(spec: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for field in ("initContainers", "containers", "ephemeralContainers"):
        for c in spec.get(field) or []:
            yield f"{field}[{c.get('name')}]", c


def baseline_violations(pod: Mapping[str, Any]) -> list[str]:
    """Pod Security Standards ``baseline`` (v1.29): what the pod violates."""
    spec = pod["spec"]
    psc = spec.get("securityContext") or {}
    out: list[str] = []
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            out.append(f"host namespaces: {field}=true")
    if (psc.get("windowsOptions") or {}).get("hostProcess"):
        out.append("hostProcess: pod")
    for volume in spec.get("volumes") or []:
        if "hostPath" in volume:
            out.append(f"hostPath volume {volume.get('name')}")
    for sysctl in psc.get("sysctls") or []:
        if sysctl.get("name") not in _SAFE_SYSCTLS:
            out.append(f"sysctl {sysctl.get('name')}")
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    for key, value in annotations.items():
        if key.startswith("container.apparmor.security.beta.kubernetes.io/") and not (
            value == "runtime/default" or value.startswith("localhost/")
        ):
            out.append(f"appArmor {key}={value}")
    contexts = [("pod", psc)] + [(where, c.get("securityContext") or {}) for where, c in _containers(spec)]
    for where, sc in contexts:
        selinux = sc.get("seLinuxOptions") or {}
        if selinux.get("type", "") not in _SELINUX_TYPES or selinux.get("user") or selinux.get("role"):
            out.append(f"seLinuxOptions {where}")
        if (sc.get("seccompProfile") or {}).get("type") == "Unconfined":
            out.append(f"seccompProfile Unconfined {where}")
        if (sc.get("appArmorProfile") or {}).get("type") == "Unconfined":
            out.append(f"appArmorProfile Unconfined {where}")
    for where, c in _containers(spec):
        sc = c.get("securityContext") or {}
        if sc.get("privileged"):
            out.append(f"privileged {where}")
        if (sc.get("windowsOptions") or {}).get("hostProcess"):
            out.append(f"hostProcess {where}")
        added = set((sc.get("capabilities") or {}).get("add") or []) - _BASELINE_CAPABILITIES
        if added:
            out.append(f"capabilities.add {sorted(added)} {where}")
        if sc.get("procMount", "Default") != "Default":
            out.append(f"procMount {where}")
        for port in c.get("ports") or []:
            if port.get("hostPort"):
                out.append(f"hostPort {where}")
    return out


def restricted_violations(pod: Mapping[str, Any]) -> list[str]:
    """Pod Security Standards ``restricted`` (v1.29) = baseline + these controls: what the pod violates."""
    spec = pod["spec"]
    psc = spec.get("securityContext") or {}
    out = baseline_violations(pod)
    for volume in spec.get("volumes") or []:
        kinds = set(volume) & _VOLUME_SOURCE_KEYS
        if not kinds <= _RESTRICTED_VOLUMES:
            out.append(f"volume type {sorted(kinds)} of {volume.get('name')}")
    if psc.get("runAsUser") == 0:
        out.append("runAsUser=0 pod")
    pod_non_root = psc.get("runAsNonRoot") is True
    pod_seccomp = (psc.get("seccompProfile") or {}).get("type") in ("RuntimeDefault", "Localhost")
    for where, c in _containers(spec):
        sc = c.get("securityContext") or {}
        if sc.get("allowPrivilegeEscalation") is not False:
            out.append(f"allowPrivilegeEscalation != false {where}")
        non_root = sc.get("runAsNonRoot")
        if non_root is False or (non_root is None and not pod_non_root):
            out.append(f"runAsNonRoot != true {where}")
        if sc.get("runAsUser") == 0:
            out.append(f"runAsUser=0 {where}")
        seccomp = (sc.get("seccompProfile") or {}).get("type")
        if not (seccomp in ("RuntimeDefault", "Localhost") or (seccomp is None and pod_seccomp)):
            out.append(f"seccompProfile not RuntimeDefault/Localhost {where}")
        capabilities = sc.get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            out.append(f"capabilities.drop lacks ALL {where}")
        added = set(capabilities.get("add") or []) - {"NET_BIND_SERVICE"}
        if added:
            out.append(f"capabilities.add {sorted(added)} {where}")
    return out


def violations(pod: Mapping[str, Any], level: str) -> list[str]:
    """The violations of ``level`` (a namespace's ``pod-security.kubernetes.io/enforce`` value)."""
    if level == "privileged":
        return []
    if level == "baseline":
        return baseline_violations(pod)
    if level == "restricted":
        return restricted_violations(pod)
    raise ValueError(f"unknown Pod Security level {level!r}")


# -- ResourceQuota and LimitRange ----------------------------------------------------------------
def quota_requirements(quota: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(requests|limits, cpu|memory)`` pairs every container must declare under ``quota``."""
    needed = []
    for key in quota["spec"]["hard"]:
        kind, _, resource = key.rpartition(".")
        if resource in ("cpu", "memory") and kind in ("", "requests", "limits"):
            needed.append((kind or "requests", resource))
    return sorted(set(needed))


def quota_violations(pod: Mapping[str, Any], quota: Mapping[str, Any]) -> list[str]:
    """What the quota admission refuses: a container (or init container) without a tracked resource."""
    out = []
    for where, c in _containers(pod["spec"]):
        if where.startswith("ephemeralContainers"):
            continue
        resources = c.get("resources") or {}
        for kind, resource in quota_requirements(quota):
            if resource not in (resources.get(kind) or {}):
                out.append(f"must specify {kind}.{resource} {where}")
    return out


def apply_limit_range(pod: Mapping[str, Any], limit_range: Mapping[str, Any]) -> dict[str, Any]:
    """The pod after LimitRanger: containers' missing limits and requests filled with the defaults."""
    pod = copy.deepcopy(dict(pod))
    for item in limit_range["spec"]["limits"]:
        if item.get("type") != "Container":
            continue
        for field in ("initContainers", "containers"):
            for c in pod["spec"].get(field) or []:
                resources = c.setdefault("resources", {})
                limits = resources.setdefault("limits", {})
                requests = resources.setdefault("requests", {})
                for resource, value in (item.get("default") or {}).items():
                    limits.setdefault(resource, value)
                for resource in {*(item.get("defaultRequest") or {}), *limits}:
                    if resource not in requests:
                        default = (item.get("defaultRequest") or {}).get(resource, limits.get(resource))
                        if default is not None:
                            requests[resource] = default
    return pod
