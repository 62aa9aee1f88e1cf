"""Errors that reach the user as one line and an exit code that says whether to retry.

Lower layers raise these with a message that already names the file, the column and the first
offending row or user; the CLI prints ``receval: error: <message>`` and exits with the error's
``exit_code``, never a traceback. The exit codes are a contract with the cluster, written once in
docs/deploy.md ("Exit codes"): 2 permanent (never retried), 3 the gate's regression verdict (never
retried), 75 transient (retried); Argo's retry
expression and the Indexed Job's ``podFailurePolicy`` follow that table.
"""

from __future__ import annotations

EXIT_INPUT_ERROR = 2
#: ``receval results gate``: tonight regressed. A verdict, not a failure to retry.
EXIT_REGRESSION = 3
#: sysexits.h EX_TEMPFAIL: "temporary failure, indicating something that is not really an error";
#: the code the cluster retries for a store that failed after its own retries.
EXIT_TRANSIENT = 75


class ReceValError(Exception):
    """Base class of every error whose message is meant for the user.

    ``option``: the option the message names (an argument of :func:`receval.evaluate` or a loader,
    a key of a configuration's ``evaluation`` section), as a word of the message. Lower layers name
    options so; the CLI renames it to its flag at its edge (:meth:`named`), so no library message
    speaks of ``--flags``.
    """

    exit_code = EXIT_INPUT_ERROR

    def __init__(self, message: str, *, option: str | None = None):
        super().__init__(" ".join(str(message).split()))  # always one line
        self.option = option

    def named(self, name: str) -> ReceValError:
        """The same error with its option called ``name`` (``exp_base 1.5: ...`` → ``--exp-base 1.5: ...``).

        The option is the message's first word, or else its last mention: a hint after the file
        named first (``/data/data_dir/x.dat: file not found; ... point data_dir at ...``)."""
        import re

        text = str(self)
        if self.option is None:
            return self
        found = list(re.finditer(rf"(?<![\w-]){re.escape(self.option)}(?![\w-])", text))
        if not found:
            return self
        at = found[0] if found[0].start() == 0 else found[-1]
        renamed = type(self)(text[:at.start()] + name + text[at.end():])
        renamed.__cause__ = self.__cause__
        return renamed


class InputError(ReceValError):
    """Bad input data: missing file, bad column, invalid value, inconsistent shards."""


class ConfigError(ReceValError):
    """Bad options or configuration (cutoff < 1, shard 3/2, unknown metric)."""


class StoreError(ReceValError):
    """A store (local folder or S3) refused or failed an operation; names bucket and key."""


class TransientStoreError(StoreError):
    """The store failed in a way a later attempt may not (5xx, throttling, connection lost): exit 75."""

    exit_code = EXIT_TRANSIENT


class ClusterError(ReceValError):
    """The Kubernetes or Argo API refused or could not be reached; says what to do."""
