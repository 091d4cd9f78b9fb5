"""Kestra's flow unit tests (`kestractl test`, `POST /api/v1/tests/run`): test-suite YAML, fixtures, assertions.

Each test case runs its flow as one execution in a scratch store (never the user's), its mocked tasks ending
with their fixture's state and outputs without running; assertions are then rendered against the ended execution.
Only the `test` command and the tests API import this package.
"""
