"""Kestra's git plugin (`io.kestra.plugin.git.*`) over the `git` command line: Clone, SyncFlows,
SyncNamespaceFiles, PushFlows, PushNamespaceFiles."""

from kestractl.plugins.git import clone, push, sync

__all__ = ["clone", "push", "sync"]
