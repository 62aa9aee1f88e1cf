"""The name rules, written once: run ids, algorithm labels, Kubernetes names and image references.

Bottom layer (imports only :mod:`receval.errors`): the run folder (``pipeline/layout.py``), the
configuration, the cluster manifests and the CLI all check names here, so a name that one of them
accepts is accepted by all the others.

- **run id**: a store folder name *and* a Kubernetes label value (``receval.io/run-id``), so the
  stricter of the two: 1-63 letters, digits, ``-``, ``_`` or ``.``, alphanumeric at both ends.
- **algorithm label**: one store path segment, 1-128 letters, digits, ``-``, ``_`` or ``.``, no ``..``.
- **namespace**: an RFC 1123 DNS label (Kubernetes ``IsDNS1123Label``): 1-63 lowercase letters,
  digits or ``-``, alphanumeric at both ends. Also a file-name part of ``receval render``.
- **object name**: :func:`object_name` builds DNS-1123 labels of at most 63 characters with a short
  hash suffix, so truncation never makes two names collide or end in ``-``.
- **image registry / tag / digest**: the grammar of the OCI distribution reference
  (``github.com/distribution/reference``, ``reference.go``).
"""

from __future__ import annotations

import hashlib
import re

from receval.errors import ConfigError

#: Kubernetes label values and DNS labels: at most 63 characters.
MAX_LABEL = 63

_RUN_ID = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?")
_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_DNS1123_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
# distribution/reference: domain (host[:port]) and path components separated by '/'.
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_REGISTRY = re.compile(
    rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*(?::[0-9]+)?/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
)
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST = re.compile(r"sha256:[a-f0-9]{64}")


def check_run_id(run_id: str, what: str = "--run-id") -> str:
    """Return ``run_id`` if it can be a store folder and a Kubernetes label value, else ConfigError."""
    if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id) or ".." in run_id:
        raise ConfigError(
            f"{what} {run_id!r}: use 1-63 letters, digits, '-', '_' or '.', starting and ending with a letter "
            "or digit (e.g. nightly-20240501)"
        )
    return run_id


def check_label(value: str, what: str = "label") -> str:
    """Return ``value`` if it is a safe single store path segment (an algorithm label), else ConfigError."""
    if not isinstance(value, str) or not _LABEL.fullmatch(value) or ".." in value:
        raise ConfigError(
            f"{what} {value!r}: use 1-128 letters, digits, '-', '_' or '.', starting with a letter or digit"
        )
    return value


def check_namespace(namespace: str, what: str = "--namespace") -> str:
    """Return ``namespace`` if it is a DNS-1123 label (a valid Kubernetes namespace), else ConfigError."""
    if not isinstance(namespace, str) or not _DNS1123_LABEL.fullmatch(namespace):
        raise ConfigError(
            f"{what} {namespace!r}: a namespace is 1-63 lowercase letters, digits or '-', starting and ending "
            "with a letter or digit (e.g. receval)"
        )
    return namespace


def check_image_registry(registry: str, what: str = "--image-registry") -> str:
    """Return ``registry`` if ``registry/receval-train`` is an image name (no tag, no digest), else ConfigError."""
    if not isinstance(registry, str) or len(registry) > 200 or not _REGISTRY.fullmatch(registry):
        raise ConfigError(
            f"{what} {registry!r}: give a registry and repository path such as ghcr.io/receval or "
            "registry.example.com:5000/ml/receval (lowercase path, no tag or digest)"
        )
    return registry


def check_image_tag(tag: str, what: str = "--image-tag") -> str:
    """Return ``tag`` if it is an image tag, else ConfigError."""
    if not isinstance(tag, str) or not _TAG.fullmatch(tag):
        raise ConfigError(f"{what} {tag!r}: not an image tag (letters, digits, '_', '.', '-'; at most 128)")
    return tag


def check_image_digest(digest: str, what: str = "--image-digest") -> str:
    """Return ``digest`` if it is ``sha256:<64 hex>``, else ConfigError."""
    if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
        raise ConfigError(f"{what} {digest!r}: expected sha256: and 64 lowercase hex digits")
    return digest


def object_name(*parts: str, max_length: int = MAX_LABEL) -> str:
    """A DNS-1123 label from ``parts``: readable prefix, then ``-`` and an 8-hex hash of all parts.

    ``object_name("receval-evaluate", "nightly-20240501", "ub")`` →
    ``receval-evaluate-nightly-20240501-ub-1a2b3c4d``. The hash is of the untruncated parts, so two
    long run ids that share a prefix still get different names; the result never ends in ``-``.
    """
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:8]
    slug = re.sub(r"[^a-z0-9-]+", "-", "-".join(parts).lower())
    slug = re.sub(r"-{2,}", "-", slug).strip("-")
    slug = slug[: max_length - len(digest) - 1].rstrip("-")
    return f"{slug}-{digest}" if slug else digest
