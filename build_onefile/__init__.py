"""Build kestractl as one file: `python -m build_onefile` writes dist/kestractl-<platform>.pyz."""
