"""Experiments built from pipeline runs (the paper's reproduction)."""
