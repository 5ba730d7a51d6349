"""The harness's pytest plugin (entry point ``pytest11``): conformance cases for your plugins.

Name them in your ``pyproject.toml`` (folders, files or installed plugins' names, relative to
the pytest root)::

    [tool.pytest.ini_options]
    harness_plugins = ["src/my_pkg/noise.py"]

and every test that takes a ``harness_case`` argument runs once per component they provide
(once per norm for attacks)::

    def test_conformance(harness_case):
        harness_case.check()
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("harness_plugins", "robust-harness plugins whose components the harness_case "
                  "argument is parametrized over", type="linelist", default=[])


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "harness_case" not in metafunc.fixturenames:
        return
    from harness.testing import plugin_cases  # only for projects that use it: torch is heavy

    targets = metafunc.config.getini("harness_plugins")
    if not targets:
        raise pytest.UsageError("harness_case needs the plugins to check: set harness_plugins "
                                "in [tool.pytest.ini_options]")
    cases = [case for target in targets
             for case in plugin_cases(target, metafunc.config.rootpath)]
    metafunc.parametrize("harness_case", cases, ids=str)
