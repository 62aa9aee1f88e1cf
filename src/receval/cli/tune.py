"""``receval tune``: grid search of an algorithm's parameters by validation nDCG (never the test set)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer

from receval.cli._common import speaks_flags

TUNE_HELP = """Choose an algorithm's parameters by a grid search on a validation split of the run's train set.

The dataset is split as [b]receval run[/b] splits it (the configuration's method, fraction and seed); the
test part is set aside and never read. The train part is split again (random per-user holdout,
--validation-fraction); each grid point is fitted on the rest and scored by the validation metric
(default nDCG@k, the configuration's relevance threshold). The configured parameters are scored the same
way, for comparison. Prints every point, the chosen one, and the algorithm entry to paste into a
configuration; --out writes all of it as JSON.

[b]Examples[/b]

  receval tune --dataset ml-100k --data-dir ../shared/datasets --algorithm mf --grid factors=10,20,50 --grid reg=0.01,0.1,1

  receval tune --config run.yaml --algorithm ub --grid neighbours=25,50,100,200 --cutoff 10 --out ub-grid.json
"""


def register(app: typer.Typer) -> None:
    app.command("tune", help=TUNE_HELP, no_args_is_help=True)(speaks_flags(tune_command))


def parse_grid(texts: list[str]) -> dict[str, list[Any]]:
    """``["factors=10,20", "reg=0.1"]`` -> ``{"factors": [10, 20], "reg": [0.1]}`` (values read as YAML)."""
    import yaml

    from receval.errors import ConfigError

    grid: dict[str, list[Any]] = {}
    for text in texts:
        name, sep, values = text.partition("=")
        name = name.strip()
        if not sep or not name or not values.strip():
            raise ConfigError(f"--grid {text!r}: expected NAME=V1,V2,... e.g. factors=20,50")
        if name in grid:
            raise ConfigError(f"--grid {name}: given twice; list all its values in one option")
        grid[name] = [yaml.safe_load(v.strip()) for v in values.split(",") if v.strip()]
    return grid


def tune_command(
    algorithm: str = typer.Option(..., "--algorithm", "-a", help="Algorithm label of the configuration, or a registry name (mf, ub, ...)."),
    grid: list[str] = typer.Option(..., "--grid", "-g", help="NAME=V1,V2,... ; repeat for each parameter (all combinations are tried)."),
    config: Optional[str] = typer.Option(None, "--config", help="Run configuration, YAML or JSON: a path or s3:// URI.", show_default=False),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="Dataset name (overrides the configuration).", show_default=False),
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help="Folder holding the datasets.", show_default="$RECEVAL_DATA or ~/.cache/receval"),
    cutoff: Optional[int] = typer.Option(None, "--cutoff", "-k", help="List length and metric cutoff.", show_default="the configuration's smallest cutoff"),
    metric: str = typer.Option("ndcg", "--metric", "-m", help="Per-user accuracy metric to maximise (ndcg, precision, recall, ap, rr)."),
    validation_fraction: float = typer.Option(0.2, "--validation-fraction", help="Share of each user's train ratings held out for validation."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Master seed (overrides the configuration).", show_default=False),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the grid, the chosen point and the defaults' score as JSON.", show_default=False),
) -> None:
    from receval.cli._common import console, progress_bar

    def say(text: str) -> None:
        console.print(text, markup=False, soft_wrap=True)  # metric keys hold brackets: ndcg[ndcg,log]@10
    from receval.config import flag_overrides, load_config
    from receval.experiments.tune import tune
    from receval.results.tables import format_value

    points = parse_grid(grid)
    cfg = load_config(config or None, flag_overrides(dataset=dataset, data_dir=data_dir, seed=seed))
    with progress_bar(f"tune {algorithm}") as update:
        result = tune(cfg, algorithm, points, cutoff=cutoff, metric=metric,
                      validation_fraction=validation_fraction, progress=update)
    say(f"{result.algorithm} on {cfg.dataset.name}: {result.fit_interactions} fit / "
                  f"{result.validation_interactions} validation interactions, {result.validation_users} users; "
                  f"validation {result.key}")
    names = [c for c in result.table.columns if c not in ("value", "seconds")]
    say("  ".join(f"{n:>12}" for n in names) + f"  {result.key:>12}")
    for row in result.table.itertuples(index=False):
        point = dict(zip(names, row[: len(names)]))
        mark = "  <- chosen" if point == result.best else ""
        say("  ".join(f"{str(point[n]):>12}" for n in names) + f"  {format_value(row.value):>12}{mark}")
    gain = result.best_value - result.default_value
    say(f"configured parameters: {result.key} {format_value(result.default_value)}; chosen: "
        f"{format_value(result.best_value)} ({'+' if gain >= 0 else ''}{format_value(gain)})")
    entry = {"name": cfg.algorithm(algorithm).name, "params": result.chosen_params}
    say("configuration entry: " + json.dumps(entry))
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(json.dumps({"dataset": cfg.dataset.name, **result.to_dict()}, indent=1, default=str) + "\n")
        tmp.replace(out)  # never a half-written file under the final name
        say(f"wrote {out}")
