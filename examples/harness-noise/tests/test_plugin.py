"""The package's own tests, written with the harness's plugin kit."""

from harness.testing import load_components


def test_conformance(harness_case):
    """Runs once per component the package registers (the kit's checks, on real tiny data)."""
    harness_case.check()


def test_the_entry_point_registers_both_components():
    components = load_components(autoload=True)
    assert components.attacks.get("uniform-noise").plugin == "harness_noise"
    assert components.architectures.get("mlp-example").version == "0.1.0"
