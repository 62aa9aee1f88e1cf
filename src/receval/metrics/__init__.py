"""Metrics: pure functions of clean frames (no I/O). See :mod:`receval.metrics.engine`."""
