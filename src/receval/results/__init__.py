"""Reading, comparing and reporting the runs of a results store.

* :mod:`receval.results.read` — runs, summaries and per-user values of a store (trusting only complete
  outputs), and a metric's trend over runs.
* :mod:`receval.results.stats` — paired comparisons of per-user values: mean delta, paired t-test,
  Wilcoxon signed-rank, Holm correction, paired bootstrap CI, Cohen's d_z.
* :mod:`receval.results.tables` — summary records as wide tables (algorithms × metrics) and their text forms.
* :mod:`receval.results.report` — a self-contained HTML report and PNG charts (matplotlib, Agg).
"""
