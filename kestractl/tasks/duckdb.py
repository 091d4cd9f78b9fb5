"""Placeholder replaced by the DuckDB Query task."""
