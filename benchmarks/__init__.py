"""kestractl's benchmark suite: `python -m benchmarks [--quick] [--json out.json] [--only NAME ...]`."""
