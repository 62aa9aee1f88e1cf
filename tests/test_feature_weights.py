"""Feature weights: refused when negative or non-finite, and cosine distances that do not depend on
the weights' scale (a row scaled by any positive factor has the same cosine to every other row)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from receval.cli import main
from receval.metrics.distance import ItemDistance
from receval.metrics.engine import EvaluationConfig, evaluate
from receval.metrics.spec import make_spec

# three items: a = (1, 1, 0), b = (1, 0, 0), c = (0, 1, 1): cos(a, b) = 1/√2, cos(a, c) = 1/2, cos(b, c) = 0
ROWS = [0, 0, 1, 2, 2]
COLS = [0, 1, 0, 1, 2]


def _distance(scale: float) -> ItemDistance:
    m = sp.csr_matrix((np.full(len(ROWS), scale), (ROWS, COLS)), shape=(3, 3))
    return ItemDistance("cosine", m)


@pytest.mark.parametrize("scale", [1e308, 1e-200, 3.0])
def test_cosine_is_scale_safe(scale):
    """Weights of 1e308 overflowed |a|² to inf (every cosine 0, every distance 1), and weights of
    1e-200 underflowed it to 0 (items taken as featureless)."""
    idx = np.array([[0, 1, 2]])
    cos = _distance(scale).pair_block(idx)[0]
    expected = np.array([[1.0, 2**-0.5, 0.5], [2**-0.5, 1.0, 0.0], [0.5, 0.0, 1.0]])
    np.testing.assert_allclose(cos, expected, rtol=1e-15, atol=1e-15)
    np.testing.assert_array_equal(_distance(scale).has_features, [True, True, True])


def test_ild_with_huge_weights_equals_ild_with_unit_weights():
    train = pd.DataFrame({"user": [1, 1], "item": [0, 1], "rating": [5.0, 5.0]})
    test = pd.DataFrame({"user": [1], "item": [2], "rating": [5.0]})
    recs = pd.DataFrame({"user": [1, 1, 1], "item": [0, 1, 2], "rank": [1, 2, 3]})
    specs = (make_spec("ild", 3), make_spec("eild", 3, "none", "exp"), make_spec("epd", 3))

    def ild(weight: float) -> list[float]:
        features = pd.DataFrame({"item": ROWS, "feature": COLS, "weight": np.full(len(ROWS), weight)})
        state = evaluate(train, test, recs, features, EvaluationConfig(specs=specs, cutoffs=(3,)))
        return [r["value"] for r in state.summary() if r["kind"] == "metric"]

    unit = ild(1.0)
    # ILD@3 = mean of 1 − cos over the 6 ordered pairs = 2·((1 − 1/√2) + (1 − 1/2) + (1 − 0)) / 6
    assert unit[0] == pytest.approx((3 - 2**-0.5 - 0.5) / 3, abs=1e-15)
    np.testing.assert_allclose(ild(1e308), unit, rtol=1e-14)
    np.testing.assert_allclose(ild(1e-200), unit, rtol=1e-14)


@pytest.mark.parametrize("weight, what", [("-1", "negative value"), ("inf", "non-numeric value 'inf'"),
                                          ("nan", "non-numeric value 'nan'")])
def test_negative_or_non_finite_feature_weights_are_refused(tmp_path: Path, capsys, weight, what):
    pd.DataFrame({"user": [1], "item": [10], "rating": [4]}).to_csv(tmp_path / "train.csv", index=False)
    pd.DataFrame({"user": [1], "item": [11], "rating": [5]}).to_csv(tmp_path / "test.csv", index=False)
    pd.DataFrame({"user": [1, 1], "item": [11, 10], "rank": [1, 2]}).to_csv(tmp_path / "recs.csv", index=False)
    (tmp_path / "features.csv").write_text(f"item,feature,weight\n10,a,1\n11,b,{weight}\n")
    with pytest.raises(SystemExit) as info:
        main(["evaluate", "--train", str(tmp_path / "train.csv"), "--test", str(tmp_path / "test.csv"),
              "--recs", str(tmp_path / "recs.csv"), "--features", str(tmp_path / "features.csv"),
              "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 2
    assert len(err) == 1 and "features.csv" in err[0] and "column 'weight'" in err[0] and what in err[0], err
    assert not (tmp_path / "out" / "summary.json").exists()
