"""Matrix factorisation (MF) by alternating least squares, implicit or explicit feedback.

Why our own ALS rather than the ``implicit`` package: ``implicit`` is a compiled extension (and a
CUDA build) whose wheels lag new Pythons, and it runs its own OpenBLAS/OpenMP thread pool that
fights numpy's BLAS threads and the pod's CPU limit (it warns and asks for
``OPENBLAS_NUM_THREADS=1``). The algorithm is small: with conjugate-gradient solves vectorised
over all users (or items) at once, every step is a few ``nnz × factors`` numpy operations and one
sparse product, which is fast enough here (MovieLens 100K in about a second, Last.fm 2K in a few
seconds on two cores) and needs nothing beyond numpy and scipy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp

from receval.errors import ConfigError
from receval.metrics import blas
from receval.recommenders.base import Recommender

FEEDBACKS = ("auto", "implicit", "explicit")


_DTYPE = np.float32


def looks_like_stars(values: np.ndarray) -> bool:
    """Whether ratings look like explicit stars: 2..20 distinct values, all within 0.5..10."""
    distinct = np.unique(values)
    return 2 <= distinct.size <= 20 and distinct[0] >= 0.5 and distinct[-1] <= 10


def _conjugate_gradient(
    start: np.ndarray,
    rhs: np.ndarray,
    structure: sp.csr_matrix,
    weights: np.ndarray,
    design: np.ndarray,
    gram: np.ndarray | None,
    reg: np.ndarray,
    steps: int,
) -> np.ndarray:
    r"""Approximately solve, for every row ``u`` at once,

    .. math::  \Big(G + \lambda_u I + \sum_{i \in I_u} w_{ui}\, d_i d_i^\top\Big) x_u = b_u

    by ``steps`` conjugate-gradient iterations warm-started at ``start`` (Takács, Pilászy & Tikk,
    "Applications of the conjugate gradient method for implicit feedback collaborative
    filtering", RecSys 2011). ``structure`` gives the (row, item) pairs of :math:`I_u` in CSR order.
    """
    counts = np.diff(structure.indptr)
    gathered = design[structure.indices]  # nnz × f, reused by every product

    def product(v: np.ndarray) -> np.ndarray:
        # repeat (not fancy indexing): rows of a CSR matrix are contiguous, and it is twice as fast
        along = weights * np.einsum("nf,nf->n", gathered, np.repeat(v, counts, axis=0))
        out = sp.csr_matrix((along, structure.indices, structure.indptr), shape=structure.shape) @ design
        if gram is not None:
            out += v @ gram
        out += reg[:, None] * v
        return out

    x = start.copy()
    residual = rhs - product(x)
    direction = residual.copy()
    rs_old = np.einsum("nf,nf->n", residual, residual)
    for _ in range(steps):
        a_dir = product(direction)
        curvature = np.einsum("nf,nf->n", direction, a_dir)
        alpha = np.divide(rs_old, curvature, out=np.zeros_like(rs_old), where=curvature > 0)
        x += alpha[:, None] * direction
        residual -= alpha[:, None] * a_dir
        rs_new = np.einsum("nf,nf->n", residual, residual)
        beta = np.divide(rs_new, rs_old, out=np.zeros_like(rs_new), where=rs_old > 0)
        direction = residual + beta[:, None] * direction
        rs_old = rs_new
    return x


class MF(Recommender):
    r"""Matrix factorisation by alternating least squares (ALS).

    **Implicit feedback** (Hu, Koren & Volinsky, "Collaborative filtering for implicit feedback
    datasets", ICDM 2008): preference :math:`p_{ui} = 1` for every train pair, confidence
    :math:`c_{ui} = 1 + \alpha\, r_{ui}` (0-confidence 1 for unobserved pairs), minimising

    .. math::  \sum_{u,i} c_{ui} (p_{ui} - x_u^\top y_i)^2
               + \lambda \Big(\sum_u \lVert x_u\rVert^2 + \sum_i \lVert y_i\rVert^2\Big),
               \qquad s(u, i) = x_u^\top y_i

    **Explicit feedback** (biased MF, Koren, Bell & Volinsky, "Matrix factorization techniques
    for recommender systems", IEEE Computer 2009; weighted-λ regularisation of Zhou et al.,
    "Large-scale parallel collaborative filtering for the Netflix prize", AAIM 2008):

    .. math::  \sum_{(u,i) \in R} (r_{ui} - \mu - b_u - b_i - x_u^\top y_i)^2
               + \lambda \Big(\sum_u n_u \lVert (x_u, b_u)\rVert^2 + \sum_i n_i \lVert (y_i, b_i)\rVert^2\Big),
               \qquad s(u, i) = \mu + b_u + b_i + x_u^\top y_i

    Each half-step solves all users (then all items) at once with ``cg_steps`` conjugate-gradient
    iterations warm-started from the previous factors, vectorised over users (no Python loop per
    user). ``feedback="auto"`` picks explicit when the ratings look like stars (2..20 distinct
    values, all within 0.5..10) and implicit otherwise (counts, plays, or all 1.0). Factors start
    as N(0, 0.01²) draws of ``numpy.random.default_rng(seed)``: the same seed gives the same model.

    Unknown users get the popularity list (implicit) or the item-bias list :math:`\mu + b_i`
    (explicit).

    Parameters
    ----------
    factors : int, default 50
    iterations : int, default 15
        ALS sweeps (users then items).
    reg : float, optional
        :math:`\lambda`; default 0.01 for implicit (as the ``implicit`` package) and 0.1 for
        explicit (times :math:`n_u`/:math:`n_i`, weighted-λ).
    alpha : float, default 1.0
        Confidence slope of implicit ALS. Hu et al. found 40 best for minutes of TV watched; on
        unit or small-count data (MovieLens binarised) 40 overfits badly (precision@10 on ml-100k
        u1: 0.17 with 40 vs 0.31 with 1), so the default is 1, as in ``implicit`` >= 0.5. Raise it
        (or log-scale the counts) for raw play counts.
    feedback : {"implicit", "explicit", "auto"}, default "implicit"
        ``implicit`` treats every rating as a positive interaction with confidence 1 + α·r: the
        model for top-N lists, which is what receval evaluates (on ml-100k u1, P@10 0.31 vs 0.09
        for explicit ALS, which fits the rating values). ``auto`` picks explicit for star ratings.
    cg_steps : int, default 3
        CG iterations per half-step (3 as in Takács et al. and the ``implicit`` package).
    seed : int, default 0
    """

    name = "mf"

    def __init__(
        self,
        factors: int = 50,
        iterations: int = 15,
        reg: float | None = None,
        alpha: float = 1.0,
        feedback: str = "implicit",
        cg_steps: int = 3,
        seed: int = 0,
    ):
        if feedback not in FEEDBACKS:
            raise ConfigError(f"mf: feedback = {feedback!r}: expected one of {', '.join(FEEDBACKS)}")
        if int(factors) < 1 or int(iterations) < 0 or int(cg_steps) < 1:
            raise ConfigError(f"mf: factors ({factors}) and cg_steps ({cg_steps}) must be >= 1, iterations >= 0")
        if reg is not None and not (np.isfinite(reg) and reg >= 0):
            raise ConfigError(f"mf: reg = {reg}: must be a finite number >= 0")
        if not (np.isfinite(alpha) and alpha >= 0):
            raise ConfigError(f"mf: alpha = {alpha}: must be a finite number >= 0")
        super().__init__(
            factors=int(factors),
            iterations=int(iterations),
            reg=None if reg is None else float(reg),
            alpha=float(alpha),
            feedback=feedback,
            cg_steps=int(cg_steps),
            seed=int(seed),
        )

    # -- training -------------------------------------------------------------------------------
    def _fit(self, ratings: sp.csr_matrix, features: sp.csr_matrix | None) -> None:
        feedback = self.params["feedback"]
        if feedback == "auto":
            feedback = "explicit" if looks_like_stars(ratings.data) else "implicit"
        self.feedback = feedback
        reg = self.params["reg"]
        if reg is None:
            reg = 0.01 if feedback == "implicit" else 0.1
        rng = np.random.default_rng(self.params["seed"])
        n_users, n_items = ratings.shape
        f = self.params["factors"]
        # float32 halves the memory traffic of the nnz × factors products (the whole cost of ALS);
        # like the ``implicit`` package, its precision is ample for ranking
        self._users = rng.normal(0.0, 0.01, (n_users, f)).astype(_DTYPE)
        self._items = rng.normal(0.0, 0.01, (n_items, f)).astype(_DTYPE)
        by_item = sp.csr_matrix(ratings.T)
        by_item.sort_indices()
        # BLAS single-threaded inside ALS: its products are tiny (factors × factors), and a multi-
        # threaded OpenBLAS spends more time synchronising than computing; on a busy or CPU-limited
        # machine 10-40 times slower (Y^T Y for 17k × 50: 155 ms with the default pool, 4 ms with one)
        with blas.one_thread():
            if feedback == "implicit":
                self._fit_implicit(ratings, by_item, reg)
            else:
                self._fit_explicit(ratings, by_item, reg)

    def _fit_implicit(self, by_user: sp.csr_matrix, by_item: sp.csr_matrix, reg: float) -> None:
        alpha, steps = self.params["alpha"], self.params["cg_steps"]

        def half(side: np.ndarray, other: np.ndarray, matrix: sp.csr_matrix) -> np.ndarray:
            extra = (alpha * matrix.data).astype(_DTYPE)  # c - 1 on observed pairs
            confidence = sp.csr_matrix((1.0 + extra, matrix.indices, matrix.indptr), shape=matrix.shape)
            rhs = confidence @ other  # Y^T C_u p(u), p = 1 on observed pairs
            gram = other.T @ other
            reg_rows = np.full(matrix.shape[0], reg, dtype=_DTYPE)
            return _conjugate_gradient(side, rhs, matrix, extra, other, gram, reg_rows, steps)

        for _ in range(self.params["iterations"]):
            self._users = half(self._users, self._items, by_user)
            self._items = half(self._items, self._users, by_item)
        self._user_bias = np.zeros(by_user.shape[0], dtype=_DTYPE)
        self._item_bias = np.zeros(by_user.shape[1], dtype=_DTYPE)
        self._mean = 0.0

    def _fit_explicit(self, by_user: sp.csr_matrix, by_item: sp.csr_matrix, reg: float) -> None:
        steps = self.params["cg_steps"]
        self._mean = float(by_user.data.mean())
        self._user_bias = np.zeros(by_user.shape[0], dtype=_DTYPE)
        self._item_bias = np.zeros(by_user.shape[1], dtype=_DTYPE)
        user_reg = (reg * np.diff(by_user.indptr)).astype(_DTYPE)
        item_reg = (reg * np.diff(by_item.indptr)).astype(_DTYPE)
        ones_u = np.ones(by_user.nnz, dtype=_DTYPE)
        ones_i = np.ones(by_item.nnz, dtype=_DTYPE)

        def half(factors: np.ndarray, bias: np.ndarray, other: np.ndarray, other_bias: np.ndarray,
                 matrix: sp.csr_matrix, reg_rows: np.ndarray, ones: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            # unknowns (x_u, b_u) against design (y_i, 1): the other side's bias moves to the target
            design = np.hstack([other, np.ones((other.shape[0], 1), dtype=_DTYPE)])
            target = (matrix.data - self._mean - other_bias[matrix.indices]).astype(_DTYPE)
            rhs = sp.csr_matrix((target, matrix.indices, matrix.indptr), shape=matrix.shape) @ design
            solved = _conjugate_gradient(np.hstack([factors, bias[:, None]]), rhs, matrix, ones, design,
                                         None, reg_rows, steps)
            return solved[:, :-1], solved[:, -1]

        for _ in range(self.params["iterations"]):
            self._users, self._user_bias = half(self._users, self._user_bias, self._items, self._item_bias,
                                                by_user, user_reg, ones_u)
            self._items, self._item_bias = half(self._items, self._item_bias, self._users, self._user_bias,
                                                by_item, item_reg, ones_i)

    # -- scoring --------------------------------------------------------------------------------
    def _score_known(self, users: np.ndarray) -> np.ndarray:
        # Score in float64: a float32 product's rounding depends on the batch's shape (BLAS blocking),
        # which reordered near-ties and made lists depend on how users were batched or sharded.
        scores = self._users[users].astype(np.float64) @ self._items.T.astype(np.float64)
        if self.feedback == "explicit":
            scores += self._mean + self._user_bias[users][:, None].astype(np.float64) + self._item_bias[None, :]
        return scores

    def _fallback_scores(self) -> np.ndarray:
        if getattr(self, "feedback", None) == "explicit":
            return self._mean + self._item_bias.astype(np.float64)
        return super()._fallback_scores()

    # -- persistence ----------------------------------------------------------------------------
    # Item factors are global; user factors are kept as learned, in per-user parts, rather than
    # folded in from the user's train row at predict time: a fold-in solve would not reproduce the
    # ALS sweep's user factors bit for bit, and lists (and every value in the docs) would move.
    def _state(self) -> dict[str, np.ndarray]:
        return {
            "item_factors": self._items,
            "item_bias": self._item_bias,
            "mean": np.asarray(self._mean),
            "feedback": np.asarray(self.feedback),
        }

    def _set_state(self, state: Mapping[str, Any]) -> None:
        self._items = state["item_factors"]
        self._item_bias = state["item_bias"]
        self._mean = float(state["mean"])
        self.feedback = str(state["feedback"])

    def _user_state(self) -> dict[str, np.ndarray]:
        return {"user_factors": self._users, "user_bias": self._user_bias}

    def _set_user_state(self, state: Mapping[str, np.ndarray]) -> None:
        self._users = state["user_factors"]
        self._user_bias = state["user_bias"]
