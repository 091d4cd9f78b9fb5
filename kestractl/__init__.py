"""kestractl: Kestra's workflow engine as one command-line tool with SQLite state."""

__version__ = "0.1.0"
