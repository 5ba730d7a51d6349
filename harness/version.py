"""The harness version: part of every cell hash, so a release recomputes what it may change."""

__version__ = "0.1.0"
