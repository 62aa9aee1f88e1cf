"""One grammar of metric keys (receval.metrics.keys), used by specs, results readers and the gate."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from receval.errors import ConfigError
from receval.metrics import spec as mspec
from receval.metrics.keys import MetricKey, format_key, match_columns, split_keys
from receval.results import read
from receval.results.tables import select


def test_every_default_key_formats_byte_identically_and_round_trips():
    specs = mspec.all_specs((10, 50))
    for s in specs:
        # The key the engine has always written: metric[relevance,discount]@cutoff, nothing else.
        assert s.key == f"{s.metric}[{s.relevance.kind},{s.discount.kind}]@{s.cutoff}"
        parsed = MetricKey.parse(s.key)
        assert parsed.complete and parsed.format() == s.key
        assert parsed == MetricKey.of(s.metric, s.relevance.kind, s.discount.kind, s.cutoff)
    assert mspec.make_spec("epc", 10, "binary", "exp").key == "epc[binary,exp]@10"
    assert read.metric_key("epc", "binary", "exp", 10) == format_key("epc", "binary", "exp", 10) == "epc[binary,exp]@10"
    assert format_key("gini", "none", "none", None) == "gini[none,none]@all"
    assert format_key("gini", "none", "none", pd.NA) == "gini[none,none]@all"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("epc", MetricKey("epc")),
        ("EPC@10", MetricKey("epc", cutoff=10)),
        ("epc[binary]", MetricKey("epc", "binary")),
        ("epc[binary,]", MetricKey("epc", "binary")),
        ("epc[,exp]@5", MetricKey("epc", None, "exp", 5)),
        ("epc[*,exp]", MetricKey("epc", None, "exp")),
        (" eild [ binary , exp ] @ 50 ", MetricKey("eild", "binary", "exp", 50)),
        ("alpha_ndcg[binary,log]@10", MetricKey("alpha_ndcg", "binary", "log", 10)),
        ("gini[none,none]@all", MetricKey("gini", "none", "none", None, no_cutoff=True)),
    ],
)
def test_parse(text, expected):
    assert MetricKey.parse(text) == expected
    # str() is parseable back to the same selector.
    assert MetricKey.parse(str(expected)) == expected


@pytest.mark.parametrize("text", ["", "@10", "epc@", "epc[binary,exp", "epc[a,b,c]", "epc@ten", "1epc", "epc]"])
def test_bad_keys_are_one_line_errors_naming_the_option(text):
    with pytest.raises(ConfigError) as err:
        MetricKey.parse(text, what="--rule")
    assert str(err.value).startswith(f"--rule {text!r}: expected NAME[RELEVANCE,DISCOUNT]@CUTOFF")
    assert "\n" not in str(err.value)


def test_split_keeps_commas_inside_brackets():
    assert split_keys("epc,eild[binary,exp]@10, ndcg@10") == ["epc", "eild[binary,exp]@10", "ndcg@10"]
    assert split_keys(["a,b[x,y]", "c"]) == ["a", "b[x,y]", "c"]
    assert read.split_selectors("a,b[x,y]") == ["a", "b[x,y]"]


def test_partial_relevance_works_in_specs_columns_and_summaries():
    """`epc[binary]` means the same thing to --metric, --metrics and the summary tables."""
    specs = mspec.parse_specs(["epc[binary]"], (10,), discount=["none", "exp"])
    assert [s.key for s in specs] == ["epc[binary,none]@10", "epc[binary,exp]@10"]
    columns = ["user", "epc[none,none]@10", "epc[binary,none]@10", "epc[binary,exp]@10", "eild[binary,exp]@10"]
    assert match_columns(columns, ["epc[binary]"]) == ["epc[binary,none]@10", "epc[binary,exp]@10"]
    assert read.match_metric_columns(columns, ["EPC[binary,exp]@10"]) == ["epc[binary,exp]@10"]
    summary = pd.DataFrame(
        {
            "algorithm": ["pop"] * 3,
            "metric": ["epc", "epc", "eild"],
            "cutoff": [10, 10, 10],
            "relevance": ["none", "binary", "binary"],
            "discount": ["none", "exp", "exp"],
            "value": [0.1, 0.2, 0.3],
        }
    )
    assert select(summary, metrics="epc[binary]")["value"].tolist() == [0.2]
    assert MetricKey.parse("epc[binary]").matches(summary).tolist() == [False, True, False]


def test_spec_errors_stay_one_line():
    with pytest.raises(ConfigError, match="unknown metric 'novelty'"):
        mspec.parse_specs(["novelty@10"], (10,))
    with pytest.raises(ConfigError, match="metrics 'epc@all': every metric has a cutoff"):
        mspec.parse_specs(["epc@all"], (10,))
    with pytest.raises(ConfigError, match=r"metrics 'epc\[binary': expected"):
        mspec.parse_specs(["epc[binary"], (10,))


def test_only_keys_py_holds_the_grammar():
    """One owner: no other module of the package has a pattern for the ``@cutoff`` part of a key."""
    import receval

    root = Path(receval.__file__).parent
    offenders = [
        str(path.relative_to(root)) for path in root.rglob("*.py")
        if path != root / "metrics" / "keys.py" and "@\\s*(" in path.read_text(encoding="utf-8")
    ]  # fmt: skip
    assert not offenders, offenders
