"""examples/harness-noise, a plugin shipped as a package: installed (CI does), it is found
through its entry point and passes its own tests, written with the plugin kit."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "examples" / "harness-noise"


def installed() -> bool:
    try:
        importlib.metadata.distribution("harness-noise")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


@pytest.fixture
def example_installed():
    if not installed():
        if os.environ.get("CI"):
            pytest.fail("CI must install the example package: pip install -e examples/harness-noise")
        pytest.skip("the example package is not installed: pip install -e examples/harness-noise")


def user_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("HARNESS_")}


def test_the_example_package_passes_its_own_tests(example_installed):
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                            cwd=PACKAGE, env=user_env(), capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout


def test_the_installed_package_is_listed_and_checked_by_name(example_installed, tmp_path):
    harness = [sys.executable, "-m", "harness"]
    listed = subprocess.run([*harness, "list", "attacks", "uniform*"], cwd=tmp_path,
                            env=user_env(), capture_output=True, text=True, timeout=120)
    assert "uniform-noise" in listed.stdout and "plugin harness_noise" in listed.stdout
    checked = subprocess.run([*harness, "check", "harness_noise"], cwd=tmp_path, env=user_env(),
                             capture_output=True, text=True, timeout=300)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.strip().endswith("2 checks: 2 ok, 0 failed, 0 skipped")
