"""The ``receval`` command line: a thin layer that parses, calls one function below and formats.

Each family of subcommands lives in its own module with a ``register(app)`` function, so that the
families stay independent and heavy imports (kubernetes, boto3, matplotlib) happen only inside the
command that needs them.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import os
import sys
from collections.abc import Iterator

import typer

from receval._version import __version__
from receval.errors import ReceValError

# pydantic looks for plugins among the entry points of every installed distribution when it builds
# its first model (about 10 ms of each command, each shard pod too); receval's models use none. Set
# the variable to an empty value to have them loaded.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

def _flags_take_no_value() -> None:
    """Show no ``<bool>`` metavar for flags (typer's rich help prints one, though flags take no value)."""
    from typer.core import TyperOption

    original = TyperOption.display_type_rich

    def display_type_rich(self, ctx):  # type: ignore[no-untyped-def]
        return None if self.is_flag else original(self, ctx)

    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_flags_take_no_value()

app = typer.Typer(
    name="receval",
    help=(
        "Evaluate recommender systems beyond accuracy: rank- and relevance-aware novelty and diversity "
        "(Vargas & Castells, RecSys 2011: EPC, EFD, EPD, EILD), accuracy, intent-aware and aggregate "
        "metrics, on user shards that merge exactly, locally or as Argo workflows on Kubernetes.\n\n"
        "Start with:  receval run   (the whole pipeline on a built-in synthetic dataset)."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)

# Modules that contribute subcommands; a module that does not exist yet is skipped so that the
# families can be developed independently.
_COMMAND_MODULES = (
    "receval.cli.evaluate",
    "receval.cli.pipeline",
    "receval.cli.datasets",
    "receval.cli.results",
    "receval.cli.cluster",
    "receval.cli.experiment",
    "receval.cli.tune",
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"receval {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version and exit.",
        show_default=False,
    ),
) -> None:
    """receval command line."""


def _register_all() -> None:
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.register(app)


def reflow(text: str | None) -> str | None:
    """Join the hard-wrapped lines of each help paragraph, so the terminal wraps them at its width.

    Typer's rich mode keeps every newline; help written at 110 columns then reads as ragged halves
    at 80. Lines indented by two spaces (examples) and bullet lines keep their own line.
    """
    if not text:
        return text
    paragraphs = []
    for paragraph in inspect.cleandoc(text).split("\n\n"):
        lines: list[str] = []
        for line in paragraph.splitlines():
            verbatim = line.startswith("  ") or line.lstrip().startswith(("- ", "* "))
            if lines and not verbatim and not lines[-1].startswith("  ") and line.strip():
                lines[-1] = f"{lines[-1].rstrip()} {line.strip()}"
            else:
                lines.append(line)
        paragraphs.append("\n".join(lines))
    return "\n\n".join(paragraphs)


def _reflow_all(typer_app: typer.Typer) -> None:
    typer_app.info.help = reflow(typer_app.info.help)
    for command in typer_app.registered_commands:
        doc = command.help if command.help is not None else (command.callback.__doc__ if command.callback else None)
        command.help = reflow(doc)
    for group in typer_app.registered_groups:
        if group.help is not None:
            group.help = reflow(group.help)
        if group.typer_instance is not None:
            _reflow_all(group.typer_instance)


_register_all()
_reflow_all(app)


def fail(message: str, code: int = 2) -> None:
    """Print one error line and exit with ``code``."""
    typer.echo(f"receval: error: {message}", err=True)
    raise SystemExit(code)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: our errors become one line on stderr and exit code 2.

    Called without ``argv`` (the ``receval`` command, ``python -m receval``), it owns the process and
    ends it without the interpreter's teardown (:func:`_end_process`). With ``argv`` (tests, a caller
    in Python) it raises ``SystemExit`` as usual.
    """
    if argv is not None:
        _run(argv)
        return
    try:
        _run(sys.argv[1:])
        code: object = 0
    except SystemExit as exc:
        code = exc.code
    _end_process(code)


def _run(argv: list[str]) -> None:
    from receval.cli._common import modernise_argv

    args = modernise_argv(argv)
    try:
        with _only_the_command_named(args[0] if args else None):
            app(args=args, prog_name="receval")
    except ReceValError as exc:
        typer.echo(f"receval: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        typer.echo("receval: interrupted", err=True)
        sys.exit(130)
    except SystemExit as exc:
        if exc.code == 143:  # receval run's SIGTERM (receval.pipeline.local.Terminated)
            typer.echo("receval: terminated (SIGTERM)", err=True)
        raise
    except Exception as exc:  # a bug of ours: still one line, the traceback only on request
        if os.environ.get("RECEVAL_DEBUG"):
            raise
        first = str(exc).splitlines()[0] if str(exc) else ""
        typer.echo(
            f"receval: internal error: {type(exc).__name__}: {first} (rerun with RECEVAL_DEBUG=1 for the traceback)",
            err=True,
        )
        sys.exit(1)


@contextlib.contextmanager
def _only_the_command_named(name: str | None) -> Iterator[None]:
    """While the app runs, let it hold only the command (or command group) ``name``, if it is one.

    Typer builds the click command of every registered command before it dispatches, evaluating
    each one's annotations: about 40 ms for 24 commands, a fixed cost of every shard pod that runs
    one of them. The command run, its options, errors and ``--help`` are the same. Anything else
    (``--help``, ``--version``, an unknown command) sees every command, for the listing or the
    "No such command" error.
    """
    from typer.main import get_command_name

    commands = [c for c in app.registered_commands
                if (c.name or (c.callback and get_command_name(c.callback.__name__))) == name]
    groups = [g for g in app.registered_groups if g.name == name]
    if len(commands) + len(groups) != 1:
        yield
        return
    every_command, every_group = app.registered_commands, app.registered_groups
    app.registered_commands, app.registered_groups = commands, groups
    try:
        yield
    finally:
        app.registered_commands, app.registered_groups = every_command, every_group


def _end_process(code: object) -> None:
    """Exit with ``code`` as ``SystemExit(code)`` would, but skip the interpreter's teardown.

    Tearing down frees every object and module of numpy, pandas, pyarrow and SciPy one by one: about
    0.1 s of CPU for an evaluate shard pod, paid again by each of N pods. The command has published
    its outputs by now; the ``atexit`` handlers (logging, pending finalizers) still run and the
    standard streams are flushed, so nothing but the freeing is skipped. A thread still running
    (which the teardown would wait for) gets the ordinary exit.
    """
    import atexit
    import threading

    if threading.active_count() > 1:
        sys.exit(code)
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:  # SystemExit("message"): printed, status 1
        print(code, file=sys.stderr)
        status = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a reader that went away (`receval ... | head`), a closed stream
            pass
    os._exit(status)


if __name__ == "__main__":  # pragma: no cover
    main()
