"""Errors that reach the user as one line and exit code 2.

Lower layers raise these with a message that already names the file, the column and the first
offending row or user; the CLI prints ``receval: error: <message>`` and exits 2, never a traceback.
"""

from __future__ import annotations

EXIT_INPUT_ERROR = 2


class ReceValError(Exception):
    """Base class of every error whose message is meant for the user."""

    exit_code = EXIT_INPUT_ERROR

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))  # always one line


class InputError(ReceValError):
    """Bad input data: missing file, bad column, invalid value, inconsistent shards."""


class ConfigError(ReceValError):
    """Bad options or configuration (cutoff < 1, shard 3/2, unknown metric)."""


class StoreError(ReceValError):
    """A store (local folder or S3) refused or failed an operation; names bucket and key."""


class ClusterError(ReceValError):
    """The Kubernetes or Argo API refused or could not be reached; says what to do."""
