"""Kestra's JDBC plugin family (`io.kestra.plugin.jdbc.*`): PostgreSQL (psycopg 3, the `postgres` extra) and
SQLite (the standard library). Importing it registers the types; no driver is imported until a task runs."""

from kestractl.plugins.jdbc import postgresql, postgresql_copy, postgresql_trigger, sqlite

__all__ = ["postgresql", "postgresql_copy", "postgresql_trigger", "sqlite"]
