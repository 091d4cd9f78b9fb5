"""Kestra's JDBC plugin family (`io.kestra.plugin.jdbc.*`): PostgreSQL (psycopg 3, the `postgres` extra), MySQL
and MariaDB (PyMySQL, the `mysql` extra) and SQLite (the standard library). Importing it registers the types; no
driver is imported until a task runs."""

from kestractl.plugins.jdbc import mysql, postgresql, postgresql_copy, postgresql_trigger, sqlite

__all__ = ["mysql", "postgresql", "postgresql_copy", "postgresql_trigger", "sqlite"]
