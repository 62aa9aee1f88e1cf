"""The package version, on the ground floor: every module that records it (partial states, model
files, run.json, reports) imports it from here, not from the ``receval`` facade above them."""

__version__ = "0.1.0"
