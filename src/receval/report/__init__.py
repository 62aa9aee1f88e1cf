"""Plain-text presentation of summaries (tables for terminals), shared by several commands."""
