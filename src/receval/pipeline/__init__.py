"""Pipeline steps: pure functions of (configuration, store). Never know whether the store is local or S3."""
