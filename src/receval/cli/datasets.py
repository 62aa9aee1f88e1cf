"""``receval datasets list`` and ``receval datasets download``: the public datasets receval reads."""

from __future__ import annotations

from typing import Optional

import typer

from receval.cli._common import console, err_console, speaks_flags

datasets_app = typer.Typer(
    name="datasets",
    help=(
        "The public datasets receval knows (MovieLens, HetRec Last.fm) and their download from the publisher. "
        "receval never ships them: their licences forbid redistribution. See docs/datasets.md.\n\n"
        "[b]Examples[/b]\n\n  receval datasets list\n\n  receval datasets download ml-100k --data-dir /data/recsys"
    ),
    no_args_is_help=True,
    rich_markup_mode="rich",
)

_DATA_DIR_HELP = "Data folder."
_DATA_DIR_DEFAULT = "$RECEVAL_DATA or ~/.cache/receval"


def register(app: typer.Typer) -> None:
    app.add_typer(datasets_app, name="datasets")


@datasets_app.command("list")
@speaks_flags
def list_command(
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help=_DATA_DIR_HELP, show_default=_DATA_DIR_DEFAULT),
) -> None:
    """List the known datasets, whether each is present in the data folder, and its terms of use.

    [b]Example[/b]

      receval datasets list --data-dir /data/recsys
    """
    from rich.table import Table

    from receval.data import datasets as registry

    base = registry.default_data_dir() if data_dir is None else data_dir
    table = Table(title=f"datasets in {base}", header_style="bold")
    for column in ("name", "present", "terms"):
        table.add_column(column)
    for name, entry in registry.ARCHIVES.items():
        folder = registry.dataset_folder(name, data_dir)
        table.add_row(name, str(folder) if folder else "no (receval datasets download " + name + ")", entry.terms)
    table.add_row("synthetic", "built in", "none")
    console.print(table)


@datasets_app.command("download")
@speaks_flags
def download_command(
    name: str = typer.Argument(..., help="Dataset name, e.g. ml-100k (see `receval datasets list`)."),
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help=_DATA_DIR_HELP, show_default=_DATA_DIR_DEFAULT),
    force: bool = typer.Option(False, "--force", help="Download again even if the dataset is present.", show_default=False),
) -> None:
    """Download NAME from its publisher, verify its checksums and extract it into the data folder.

    [b]Examples[/b]

      receval datasets download ml-100k

      receval datasets download lastfm-2k --data-dir /data/recsys
    """
    from receval.data import datasets as registry

    entry = registry.archive(name)
    err_console.print(f"{entry.name}: {entry.terms}")
    folder = registry.download(name, data_dir, progress=True, force=force)
    console.print(f"{name}: {folder}")
