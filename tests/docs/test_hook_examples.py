"""Each hook's ``Example::`` in harness/hookspecs.py is a whole plugin: load it and run the
plugin kit's checks on what it registers, so the reference never shows code that fails."""

from __future__ import annotations

import inspect
import textwrap

import pytest

from harness import hookspecs
from harness.testing import plugin_cases

HOOKS = sorted(name for name in vars(hookspecs) if name.startswith("harness_"))


def example_of(hook: str) -> str:
    doc = inspect.getdoc(getattr(hookspecs, hook)) or ""
    assert "Example::" in doc, f"{hook} has no Example:: block"
    return textwrap.dedent(doc.split("Example::", 1)[1])


@pytest.mark.parametrize("hook", HOOKS)
def test_the_hook_example_registers_a_component_that_passes_the_checks(hook, tmp_path):
    path = tmp_path / f"example_{hook}.py"
    path.write_text(example_of(hook))
    cases = plugin_cases(path)
    kind = hook.removeprefix("harness_register_")
    assert cases and {case.kind for case in cases} == {kind}
    for case in cases:
        case.check()
