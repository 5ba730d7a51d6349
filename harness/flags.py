"""Validity flags: diagnostics that qualify a number (gradient masking, randomness, …).

An attack (or the engine) calls ``raise_flag`` while it runs; the engine collects the flags of
each evaluation cell, stores them with its result and the report prints them next to the number.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_collector: ContextVar[dict[str, str] | None] = ContextVar("harness_flags", default=None)


def raise_flag(name: str, detail: str = "") -> None:
    """Record a diagnostic for the evaluation in progress (ignored outside one).

    ``name`` is short and stable (``"zero-gradients"``); ``detail`` says what was seen.
    """
    flags = _collector.get()
    if flags is not None:
        flags.setdefault(name, detail)


@contextmanager
def collect_flags() -> Iterator[dict[str, str]]:
    """Collect every flag raised inside the block into the yielded dict."""
    flags: dict[str, str] = {}
    token = _collector.set(flags)
    try:
        yield flags
    finally:
        _collector.reset(token)
