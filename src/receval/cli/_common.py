"""What every CLI module shares: the option vocabulary, list parsing, output width, tables that fit, progress.

One owner for each: an option that means the same thing in two commands is declared here once
(:func:`cutoff_option`, :func:`metric_option`, :func:`algorithm_option`) and parsed here once
(:func:`split_list`, :func:`int_list`); old spellings are mapped in :data:`OLD_SPELLINGS`.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import shutil
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console


class _ConsoleOnFirstUse:
    """A rich ``Console`` made when first used: importing rich costs every ``receval`` process ~20 ms,
    and a pipeline step (a shard pod) prints nothing through it."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    def real(self) -> Console:
        """The console itself (for rich objects that take one: ``Progress``, ``Live``)."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real(), name)


console: Any = _ConsoleOnFirstUse(highlight=False)
err_console: Any = _ConsoleOnFirstUse(stderr=True, highlight=False)

# ------------------------------------------------------------------------------------------------ vocabulary

# Spellings of receval <= 0.x that still work for one release; they are rewritten before parsing, so they
# appear in no --help. Remove them in the release after next.
OLD_SPELLINGS = {"--cutoffs": "--cutoff", "--metrics": "--metric", "--algorithms": "--algorithm",
                 "--datasets": "--dataset"}


def modernise_argv(argv: Sequence[str]) -> list[str]:
    """Rewrite :data:`OLD_SPELLINGS` (``--cutoffs 10`` and ``--cutoffs=10``) up to a ``--`` terminator."""
    out: list[str] = []
    rest = False
    for arg in argv:
        if arg == "--":
            rest = True
        if not rest:
            name, eq, value = arg.partition("=")
            if name in OLD_SPELLINGS:
                arg = OLD_SPELLINGS[name] + eq + value
        out.append(arg)
    return out


def split_list(values: str | Sequence[str] | None) -> list[str]:
    """Values of a list option: repeated (``--metric a --metric b``), comma-separated (``a,b``) or both.

    A comma inside brackets belongs to the value: ``epc[binary,exp]@10,ndcg`` is two metrics.
    """
    from receval.metrics.keys import split_keys  # the one owner of "a comma inside brackets"

    return split_keys(values)


def int_list(values: str | Sequence[str] | None, option: str) -> list[int]:
    """Whole numbers of a list option (``--cutoff 10,50 --cutoff 100``); a bad one is a one-line error."""
    from receval.errors import ConfigError

    texts = split_list(values)
    bad = next((t for t in texts if not re.fullmatch(r"\d+", t)), None)
    if bad is not None:
        raise ConfigError(f"{option} {bad!r}: expected whole numbers, e.g. {option} 10,50")
    return [int(t) for t in texts]


def cutoff_option(default: str | None = None, help: str = "Cutoffs N of the top-N lists", *,
                  show_default: Any = None, **kw: Any) -> Any:
    """``--cutoff/-k``: ``10,50`` or repeated.

    ``default`` is the value when the option is absent; ``show_default`` only describes one that is decided
    later (e.g. by the run configuration), which a real default would override.
    """
    shown = show_default if show_default is not None else (default or False)
    return typer.Option(
        [default] if default else None, "--cutoff", "-k", metavar="N[,N...]",
        help=f"{help}; repeat or comma-separate, e.g. --cutoff 10,50.", show_default=shown, **kw,
    )


def metric_option(help: str = "Metrics: NAME, NAME[RELEVANCE,DISCOUNT] or NAME@K", show_default: Any = False,
                  **kw: Any) -> Any:
    """``--metric/-m``: names or keys, repeated or comma-separated."""
    return typer.Option(None, "--metric", "-m", metavar="METRIC[,...]",
                        help=f"{help}; repeat or comma-separate.", show_default=show_default, **kw)


def algorithm_option(help: str = "Algorithms", show_default: Any = False, **kw: Any) -> Any:
    """``--algorithm/-a``: labels, repeated or comma-separated."""
    return typer.Option(None, "--algorithm", "-a", metavar="NAME[,...]",
                        help=f"{help}; repeat or comma-separate.", show_default=show_default, **kw)


# Lower layers (the engine, receval.evaluate, the readers) name an option as the API and the configuration
# spell it (``exp_base``, ``cutoffs``) and set the error's ``option``; a command renames it to its flag here.
_FLAG_OF_OPTION = {"cutoffs": "--cutoff", "metrics": "--metric", "n_boot": "--bootstrap", "rules": "--rule",
                  "algorithms": "--algorithm"}


def flag_of(option: str) -> str:
    """The flag of an option: ``exp_base`` → ``--exp-base``, ``cutoffs`` → ``--cutoff``, ``metrics`` → ``--metric``."""
    return _FLAG_OF_OPTION.get(option) or "--" + option.replace("_", "-")


def evaluation_option(name: str, **kw: Any) -> Any:
    """The flag of evaluation option ``name``: its default and help are the declaration's
    (:data:`receval.metrics.options.OPTIONS`), so they cannot drift from the API's and the
    configuration's; the command passes the value on to be validated by the same rules."""
    from receval.metrics.options import BY_NAME  # plain data: no pydantic on every receval call

    option = BY_NAME[name]
    if option.many:
        return cutoff_option(",".join(str(c) for c in option.default), help=option.help, **kw)
    return typer.Option(option.default, flag_of(name), help=option.help, **kw)


def speaks_flags(command: Callable[..., Any] | None = None, *,
                 flags: dict[str, str] | None = None) -> Any:
    """``command`` with the errors of lower layers naming its flags instead of options
    (``exp_base 1.5: ...`` becomes ``--exp-base 1.5: ...``). Only an option the command has a flag for
    is renamed; ``flags`` maps an option to another of its flags (``{"shard": "--part"}``).
    A decorator, bare or with ``flags=``."""
    if command is None:
        return lambda fn: speaks_flags(fn, flags=flags)
    from receval.errors import ReceValError

    own = _flags_of_command(command)

    @functools.wraps(command)
    def with_flag_names(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ReceValError as exc:
            flag_name = (flags or {}).get(exc.option or "") or flag_of(exc.option or "")
            if exc.option is None or flag_name not in own:
                raise
            raise exc.named(flag_name) from None

    return with_flag_names


def _flags_of_command(command: Callable[..., Any]) -> set[str]:
    import inspect

    from typer.models import OptionInfo

    own: set[str] = set()
    for name, parameter in inspect.signature(command).parameters.items():
        if isinstance(parameter.default, OptionInfo):
            declared = [d for d in parameter.default.param_decls or () if d.startswith("--")]
            own.update(declared or ["--" + name.replace("_", "-")])
    return own


def flag(help: str, *names: str, **kw: Any) -> Any:
    """A boolean flag: present or absent, no value."""
    return typer.Option(False, *names, help=help, show_default=False, **kw)


# ------------------------------------------------------------------------------------------------ tables


def output_width() -> int:
    """Columns to lay tables out in: ``$COLUMNS``, else the terminal's, else 200 (a pipe or a log)."""
    text = os.environ.get("COLUMNS", "")
    if text.isdigit() and int(text) > 0:
        return int(text)
    if sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    return 200


def out_console() -> Console:
    """A console for tables on stdout that never wraps a row at a width it was not given."""
    from rich.console import Console

    return Console(width=output_width(), highlight=False, soft_wrap=False)


def fit_tables(
    title: str | None,
    keys: Sequence[tuple[str, str]],
    values: Sequence[tuple[str, str]],
    rows: Sequence[Sequence[str]],
    width: int,
) -> list[Any]:
    """Rich tables showing every cell whole within ``width`` columns.

    ``keys`` and ``values`` are ``(header, justify)``; each row has one cell (rich markup) per key and
    value. The value columns are split into consecutive groups, each shown with the key columns again,
    so that no group is wider than ``width``; nothing is ever cut to ``…`` (a column wider than the
    page alone folds).
    """
    from rich import box
    from rich.console import Console
    from rich.measure import Measurement
    from rich.table import Table

    probe = Console(width=10_000, highlight=False)
    n_keys = len(keys)

    def build(group: Sequence[int], heading: str | None) -> Table:
        table = Table(title=heading, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
                      header_style="bold", collapse_padding=False)
        for header, justify in [*keys, *(values[i] for i in group)]:
            table.add_column(header, justify=justify, no_wrap=True, overflow="fold")
        for row in rows:
            table.add_row(*row[:n_keys], *(row[n_keys + i] for i in group))
        return table

    def needed(group: Sequence[int]) -> int:
        return Measurement.get(probe, probe.options, build(group, None)).maximum

    groups: list[list[int]] = []
    for i in range(len(values)):
        if groups and needed([*groups[-1], i]) <= width:
            groups[-1].append(i)
        else:
            groups.append([i])
    if not groups:
        groups = [[]]
    tables = []
    for number, group in enumerate(groups, 1):
        # the title once, above the first group; the later groups continue it
        tables.append(build(group, title if number == 1 else None))
    return tables


def print_tables(tables: Sequence[Any], out: Console | None = None) -> None:
    out = out or out_console()
    for table in tables:
        out.print(table)


# ------------------------------------------------------------------------------------------------ progress


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty()


def log_line(message: str) -> None:
    """One plain progress line on stderr (for pipes and pod logs, where bars would be noise)."""
    print(f"receval: {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def progress_bar(description: str, enabled: bool = True) -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar on a terminal, else a log line when the work starts and one when it is done.

    Yields ``update(done, total)``.
    """
    if not enabled:
        yield lambda done, total: None
        return
    if not stderr_is_terminal():
        seen = {"total": 0, "started": False}

        def remember(done: int, total: int) -> None:
            # the first line waits for the first progress: a stage refused before any work prints only its error
            if not seen["started"]:
                seen["started"] = True
                log_line(f"{description} ...")
            seen["total"] = total

        yield remember
        log_line(f"{description}: done" + (f" ({seen['total']})" if seen["total"] else ""))
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=err_console.real(), transient=True,
    ) as prog:
        task = prog.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            prog.update(task, completed=done, total=total)

        yield update


@contextlib.contextmanager
def step_bars(enabled: bool = True) -> Iterator[Callable[[str, int, int], None]]:
    """The ``progress`` of :func:`receval.pipeline.local.run_local`: a rich bar per step (train, predict,
    evaluate) on a terminal; nothing on a pipe, where the stage lines are the log.

    Yields ``update(step, done, total)``; ``done = 0`` starts the step's bar afresh (the next run of an
    experiment).
    """
    if not enabled or not stderr_is_terminal():
        yield lambda step, done, total: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("[bold]{task.description:<9}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err_console.real(), transient=True) as bars:
        tasks: dict[str, Any] = {}

        def update(step: str, done: int, total: int) -> None:
            if step not in tasks:
                tasks[step] = bars.add_task(step, total=total)
            elif done == 0:
                bars.reset(tasks[step], total=total)
            bars.update(tasks[step], completed=done, total=total)

        yield update


def pipeline_log_lines() -> None:
    """Log the pipeline's stage lines (``receval.pipeline`` INFO) on stderr in this process.

    Step functions run in worker processes too; those keep their per-shard lines to themselves, so a
    local run prints one line per stage, not one per shard.
    """
    logger = logging.getLogger("receval.pipeline")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        logger.addHandler(_StderrHandler())
    logger.setLevel(logging.INFO)
    logger.propagate = False


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of the record (not at creation)."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("receval: %(message)s"))

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass
