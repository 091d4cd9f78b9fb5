"""Modules put on the PYTHONPATH of Python script tasks (not imported by kestractl itself).

`kestra.py` stands in for the `kestra` PyPI package, as Kestra's Python images provide it.
"""

from pathlib import Path

FOLDER = str(Path(__file__).parent)
