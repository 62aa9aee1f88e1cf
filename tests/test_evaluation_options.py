"""The evaluation options are declared once (receval.metrics.options.OPTIONS), and every entry agrees.

Three entries take them: ``receval.evaluate(...)`` keywords, a configuration file's ``evaluation``
section and ``receval evaluate``'s flags; the engine's ``EvaluationConfig`` is built from them. They
used to be declared three times and disagreed (the engine took ``exp_base = 1.5``, which the
configuration refused). Here, each entry is read as a user meets it: the API's signature, a
configuration file read from disk, the ``receval evaluate`` command that ``main`` runs; the expected
values come from the declaration, so a literal default or a rule written again anywhere fails.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pandas as pd
import pytest
import typer

import receval
from receval.cli import app, main
from receval.cli._common import flag_of
from receval.config import EvaluationSection, load_config
from receval.errors import ConfigError
from receval.metrics.engine import EvaluationConfig
from receval.metrics.options import OPTIONS

SRC = Path(receval.__file__).parent

TRAIN = pd.DataFrame({"user": ["a", "a", "b"], "item": ["x", "y", "x"], "rating": [4.0, 3.0, 5.0]})
TEST = pd.DataFrame({"user": ["a", "b"], "item": ["z", "y"], "rating": [5.0, 4.0]})
RECS = pd.DataFrame({"user": ["a", "a", "b"], "item": ["z", "x", "y"], "rank": [1, 2, 1]})


def click_command(name: str):
    return typer.main.get_command(app).commands[name]  # type: ignore[attr-defined]


def cli_default(command: str, option: str):
    """The default of the flag of ``option`` in ``receval COMMAND``, as the command receives it."""
    flag = flag_of(option)
    (param,) = [p for p in click_command(command).params if flag in p.opts]
    if option == "cutoffs":  # a text list option: "10,50"
        return tuple(int(c) for text in param.default for c in str(text).split(","))
    return param.default


def input_files(folder: Path) -> list[str]:
    """``--train F --test F --recs F`` of the frames above, written as CSV into ``folder``."""
    args = []
    for role, frame in (("train", TRAIN), ("test", TEST), ("recs", RECS)):
        frame.to_csv(folder / f"{role}.csv", index=False)
        args += [f"--{role}", str(folder / f"{role}.csv")]
    return args


def run(capsys, *argv: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    return info.value.code, capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ defaults


@pytest.mark.parametrize("option", OPTIONS, ids=lambda o: o.name)
def test_the_api_the_engine_the_cli_and_a_configuration_file_default_alike(option, tmp_path):
    api = inspect.signature(receval.evaluate).parameters[option.name].default
    engine = getattr(EvaluationConfig(), option.name)
    cli = cli_default("evaluate", option.name)
    path = tmp_path / "run.yaml"
    path.write_text("evaluation: {}\n")
    from_file = getattr(load_config(path).evaluation, option.name)
    assert api == engine == cli == option.default, (api, engine, cli, option.default)
    # a run's default is the option's unless the declaration says otherwise (the cutoffs: 10 and 50)
    assert from_file == getattr(EvaluationSection(), option.name) == option.default_of_a_run


def test_only_the_cutoffs_default_differently_in_a_run_and_run_shows_that_default(capsys):
    assert [o.name for o in OPTIONS if o.default_of_a_run != o.default] == ["cutoffs"]
    (param,) = [p for p in click_command("run").params if "--cutoff" in p.opts]
    assert param.show_default == ",".join(map(str, load_config(None).evaluation.cutoffs))


def test_every_option_is_an_api_keyword_a_configuration_key_and_a_flag():
    names = [o.name for o in OPTIONS]
    assert set(names) <= set(inspect.signature(receval.evaluate).parameters)
    assert set(names) <= set(EvaluationSection.model_fields) and set(names) <= set(EvaluationConfig.model_fields)
    flags = {opt for p in click_command("evaluate").params for opt in p.opts}
    assert {flag_of(n) for n in names} <= flags
    # and the flags' help is the declaration's, not a second text
    helps = {flag_of(o.name): o.help for o in OPTIONS}
    for param in click_command("evaluate").params:
        for opt in param.opts:
            if opt in helps:
                assert param.help.startswith(helps[opt]), (opt, param.help)


# ------------------------------------------------------------------------------------------------ rules

BAD = [
    ("exp_base", 1.5), ("exp_base", 0.0), ("threshold", float("nan")), ("background", float("inf")),
    ("alpha", 2.0), ("cutoffs", 10_000_000_000), ("distance", "euclid"), ("epd_profile", "weighted"),
    ("catalog", 0),
]


def yaml_value(value) -> str:
    if isinstance(value, float) and value != value:
        return ".nan"
    if value == float("inf"):
        return ".inf"
    return repr(value)


@pytest.mark.parametrize(("name", "value"), BAD, ids=[f"{n}={v}" for n, v in BAD])
def test_a_bad_value_gets_the_same_rule_from_the_api_a_configuration_file_and_the_cli(
        name, value, tmp_path, capsys):
    given = [value] if name == "cutoffs" else value
    shown = repr(value)
    # the API names the argument
    with pytest.raises(ConfigError) as info:
        receval.evaluate(TRAIN, TEST, RECS, **{name: given})
    message = str(info.value)
    assert message.startswith(f"{name} {shown}: ") and "--" not in message, message
    rule = message.removeprefix(f"{name} {shown}: ")
    # the configuration file names the key
    path = tmp_path / "run.yaml"
    path.write_text(f"evaluation: {{{name}: {'[' + yaml_value(value) + ']' if name == 'cutoffs' else yaml_value(value)}}}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    key = f"'evaluation.{name}[0]'" if name == "cutoffs" else f"'evaluation.{name}'"
    assert str(info.value).endswith(f"{key} = {shown}: {rule}"), (str(info.value), rule)
    # the command line names the flag, before reading any file
    files = input_files(tmp_path)
    code, err = run(capsys, "evaluate", *files, "--out", str(tmp_path / "out"), flag_of(name), str(value))
    assert code == 2 and err.strip() == f"receval: error: {flag_of(name)} {shown}: {rule}", err
    assert not (tmp_path / "out").exists()
    # and the engine refuses it by the same rule, naming the option
    with pytest.raises(ConfigError, match="^" + name):
        EvaluationConfig(**{name: (value,) if name == "cutoffs" else value})


def test_strict_types_are_refused_by_every_entry_alike(tmp_path):
    with pytest.raises(ConfigError, match=r"^cutoffs '10': Input should be a valid integer$"):
        receval.evaluate(TRAIN, TEST, RECS, cutoffs=["10"])
    path = tmp_path / "run.yaml"
    path.write_text("evaluation: {cutoffs: ['10']}\n")
    with pytest.raises(ConfigError, match=r"'evaluation.cutoffs\[0\]' = '10': Input should be a valid integer$"):
        load_config(path)
    with pytest.raises(ConfigError, match=r"^catalog True: Input should be a valid integer$"):
        EvaluationConfig(catalog=True)


# ------------------------------------------------------------------------------------------------ names


def test_engine_errors_name_options_and_the_cli_names_its_flags(tmp_path, capsys):
    for kw, start in ((dict(metrics=["novelty"]), "metrics 'novelty': unknown metric"),
                      (dict(shard="3/2"), "shard 3/2: the index must be in 0..1"),
                      (dict(metrics=["eild"]), "features: eild[none,none]@10 needs item features")):
        with pytest.raises(ConfigError) as info:
            receval.evaluate(TRAIN, TEST, RECS, **kw)
        assert str(info.value).startswith(start) and "--" not in str(info.value), str(info.value)
    files = input_files(tmp_path)
    out = ["--out", str(tmp_path / "out")]
    for flags, start in ((("--metric", "novelty"), "--metric 'novelty': unknown metric"),
                         (("--shard", "3/2"), "--shard 3/2: the index must be in 0..1"),
                         (("--metric", "eild"), "--features: eild[none,none]@10 needs item features"),
                         (("--catalog", "1"), "--catalog 1: smaller than the 3 distinct items")):
        code, err = run(capsys, "evaluate", *files, *out, *flags)
        assert code == 2 and err.startswith(f"receval: error: {start}"), err


def _raised_texts(path: Path) -> list[tuple[int, str]]:
    """The literal text of every exception raised in ``path`` (f-string parts included)."""
    texts = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Raise) and node.exc is not None:
            for part in ast.walk(node.exc):
                if isinstance(part, ast.Constant) and isinstance(part.value, str):
                    texts.append((part.lineno, part.value))
    return texts


def test_no_error_raised_below_the_cli_names_a_flag():
    files = [*sorted((SRC / "metrics").glob("*.py")), *sorted((SRC / "data").glob("*.py")),
             *sorted((SRC / "results").glob("*.py")), SRC / "api.py"]
    found = [f"{path.relative_to(SRC)}:{line}: {text}" for path in files for line, text in _raised_texts(path)
             if "--" in text]
    assert not found, found
    # the helper that builds such errors is named there too: _no_network's message is returned, not raised
    assert "--" not in (SRC / "data" / "datasets.py").read_text().split("def _no_network", 1)[1].split("\ndef ", 1)[0]


def test_a_command_renames_only_the_options_it_has_flags_for(tmp_path, capsys):
    """`receval run` has no --catalog: a catalog error of a run keeps naming its key."""
    from receval.cli._common import speaks_flags

    def command(store: str = typer.Option(None, "--store")) -> None:
        raise ConfigError("catalog 1: too small", option="catalog")

    with pytest.raises(ConfigError, match="^catalog 1: too small$"):
        speaks_flags(command)()

    def with_flag(catalog: int = typer.Option(None, "--catalog")) -> None:
        raise ConfigError("catalog 1: too small", option="catalog")

    with pytest.raises(ConfigError, match="^--catalog 1: too small$"):
        speaks_flags(with_flag)()


def test_the_pipeline_reference_lists_the_declared_defaults():
    """docs/pipeline.md's key table is one more copy of the defaults: it must say what the declaration says."""
    import re

    rows = {}
    for line in (SRC.parents[1] / "docs" / "pipeline.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        m = re.fullmatch(r"`evaluation\.(?:\{(?P<many>[^}]+)\}|(?P<one>\w+))`", cells[0]) if len(cells) == 3 else None
        if m:
            names = (m["many"] or m["one"]).split(",")
            values = [cells[1]] if len(names) == 1 else [v.strip() for v in cells[1].split(",")]
            rows.update(zip(names, values))
    for option in OPTIONS:
        documented = rows[option.name]
        expected = option.default_of_a_run
        if option.optional and expected is None:
            continue  # described in words (items of train ∪ test)
        if isinstance(expected, tuple):
            assert documented == "`[" + ", ".join(map(str, expected)) + "]`", (option.name, documented)
        elif isinstance(expected, str):
            assert documented == f"`{expected}`", (option.name, documented)
        else:
            assert float(documented) == expected, (option.name, documented)


@pytest.mark.parametrize("text", ["novelty", "epc@all", "epc[binary"])
def test_a_bad_metric_gets_the_same_rule_from_every_entry_and_a_file_is_refused_when_read(text, tmp_path, capsys):
    with pytest.raises(ConfigError) as info:
        receval.evaluate(TRAIN, TEST, RECS, metrics=[text])
    message = str(info.value)
    assert message.startswith(f"metrics {text!r}: "), message
    rule = message.removeprefix(f"metrics {text!r}: ")
    path = tmp_path / "run.yaml"
    path.write_text(f"evaluation: {{metrics: [{text!r}]}}\n")
    with pytest.raises(ConfigError) as info:  # by load_config, not by an evaluate pod after the run started
        load_config(path)
    assert str(info.value).endswith(f"'evaluation.metrics': {text!r}: {rule}"), str(info.value)
    files = input_files(tmp_path)
    code, err = run(capsys, "evaluate", *files, "--out", str(tmp_path / "out"), "--metric", text)
    assert code == 2 and err.strip() == f"receval: error: --metric {text!r}: {rule}", err


def test_the_flag_replaces_the_option_not_a_file_that_shares_its_name():
    from receval.errors import InputError

    leading = InputError("catalog 1: smaller than the 3 distinct items recommended in /x/catalog.csv", option="catalog")
    assert str(leading.named("--catalog")) == ("--catalog 1: smaller than the 3 distinct items recommended in "
                                               "/x/catalog.csv")
    hint = InputError("/d/data_dir/ml-1m/ratings.dat: file not found; point data_dir at a folder", option="data_dir")
    assert str(hint.named("--data-dir")) == "/d/data_dir/ml-1m/ratings.dat: file not found; point --data-dir at a folder"


def test_the_api_takes_numpy_scalars_as_the_numbers_they_hold():
    import numpy as np

    plain = receval.evaluate(TRAIN, TEST, RECS, cutoffs=(1, 2), threshold=4.0, catalog=5)
    numpy = receval.evaluate(TRAIN, TEST, RECS, cutoffs=np.array([2, 1]), threshold=np.int64(4), catalog=np.int64(5))
    assert numpy.records == plain.records
    with pytest.raises(ConfigError, match=r"^cutoffs True: Input should be a valid integer$"):
        receval.evaluate(TRAIN, TEST, RECS, cutoffs=[np.bool_(True)])
