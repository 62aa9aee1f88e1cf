"""Data: column contracts and validation, dataset loaders, splits, synthetic data. No metrics here."""
