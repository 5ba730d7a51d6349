"""Errors the harness distinguishes: user mistakes (exit 2, no traceback) and broken contracts."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class UserError(Exception):
    """A mistake in the user's input: the CLI prints the message alone and exits with status 2.

    The message names the file, the key and a fix; it is the whole story, so no traceback.
    """


class PluginError(UserError):
    """A plugin could not be loaded, or two plugins claim the same name."""


class ContractViolation(Exception):
    """A plugin broke the harness contract at run time (e.g. an attack left its threat model).

    Recorded as the error of the cell that hit it; never silently repaired.
    """


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """' Did you mean: a, b?' for the closest choices, or '' when nothing is close."""
    close = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.6)
    return f" Did you mean: {', '.join(close)}?" if close else ""
