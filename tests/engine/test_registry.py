import pytest
from pydantic import BaseModel, ValidationError

from harness import Params
from harness.errors import PluginError, UserError
from harness.kinds import KINDS
from harness.registry import (
    ArchitectureRegistry,
    AttackRegistry,
    DatasetRegistry,
    NoParams,
    UnknownNameError,
)


def factory(params, threat):
    return lambda model, x, y: x


class StepParams(Params):
    steps: int = 10


@pytest.fixture
def attacks():
    registry = AttackRegistry()
    registry.current_plugin = "core"
    registry.current_version = "1.0"
    for name in ("pgd", "pgdl2", "fgsm", "cw-l2"):
        registry.add(name, factory, norms=["l2"] if "l2" in name else ["linf"])
    return registry


def test_add_stamps_plugin_and_version_and_get_returns_entry(attacks):
    entry = attacks.get("pgd")
    assert entry.name == "pgd"
    assert entry.factory is factory
    assert entry.plugin == "core"
    assert entry.version == "1.0"
    assert entry.norms == ("linf",)  # lists become tuples
    assert entry.params is NoParams
    assert attacks.kind is KINDS["attacks"]
    assert len(attacks) == 4
    assert "pgd" in attacks
    assert "PGD" not in attacks


def test_names_and_iteration_are_sorted(attacks):
    assert attacks.names() == ["cw-l2", "fgsm", "pgd", "pgdl2"]
    assert [e.name for e in attacks] == ["cw-l2", "fgsm", "pgd", "pgdl2"]


@pytest.mark.parametrize(
    ("pattern", "exclude", "expected"),
    [
        ("*", None, ["cw-l2", "fgsm", "pgd", "pgdl2"]),
        ("pgd*", None, ["pgd", "pgdl2"]),
        ("*l2", None, ["cw-l2", "pgdl2"]),
        ("pgd?2", None, ["pgdl2"]),
        ("*", "*l2", ["fgsm", "pgd"]),
        ("pgd*", "pgdl2", ["pgd"]),
        ("PGD*", None, []),  # case-sensitive, like the names themselves
        ("nothing*", None, []),
    ],
)
def test_list_wildcards_and_exclude(attacks, pattern, expected, exclude):
    assert [e.name for e in attacks.list(pattern, exclude=exclude)] == expected


def test_unknown_name_suggests_close_names(attacks):
    with pytest.raises(UnknownNameError) as info:
        attacks.get("pgdd")
    assert str(info.value) == (
        "unknown attack 'pgdd'. Did you mean: pgd, pgdl2? Run 'harness list attacks' (4 available)."
    )
    assert isinstance(info.value, UserError)
    assert info.value.choices == ["cw-l2", "fgsm", "pgd", "pgdl2"]


def test_unknown_name_without_close_match_has_no_hint(attacks):
    with pytest.raises(UnknownNameError) as info:
        attacks.get("zzzzzz")
    assert str(info.value) == "unknown attack 'zzzzzz'. Run 'harness list attacks' (4 available)."


def test_collision_names_both_plugins(attacks):
    attacks.current_plugin = "thirdparty"
    with pytest.raises(PluginError) as info:
        attacks.add("pgd", factory)
    assert str(info.value) == (
        "attack 'pgd' is registered by both 'core' and 'thirdparty'; rename one or block a "
        "plugin with --block-plugin"
    )
    assert attacks.get("pgd").plugin == "core"  # the first registration is kept


def test_frozen_registry_refuses_add(attacks):
    attacks.freeze()
    with pytest.raises(PluginError, match=r"attack registry is frozen; register 'late' from a hook"):
        attacks.add("late", factory)
    assert "late" not in attacks
    assert attacks.get("pgd").name == "pgd"  # reading still works


@pytest.mark.parametrize("norms", [["linf", "l3"], ["Linf"], [], "linf"])
def test_bad_norms_rejected(norms):
    registry = AttackRegistry()
    registry.current_plugin = "p"
    with pytest.raises(PluginError, match=r"attack 'x' from plugin 'p': norms must be a non-empty "
                                          r"subset of \['l0', 'l1', 'l2', 'linf'\]"):
        registry.add("x", factory, norms=norms)
    assert "x" not in registry


def test_all_norms_accepted():
    entry = AttackRegistry().add("x", factory, norms=["linf", "l2", "l1", "l0"])
    assert entry.norms == ("linf", "l2", "l1", "l0")


class NotPydantic:
    steps: int = 1


@pytest.mark.parametrize("params", [NotPydantic, dict, StepParams(), None])
def test_params_must_be_pydantic_model_class(params):
    registry = ArchitectureRegistry()
    registry.current_plugin = "p"
    with pytest.raises(PluginError, match=r"architecture 'net' from plugin 'p': params must be a "
                                          r"subclass of harness.Params"):
        registry.add("net", factory, params=params)


class Loose(BaseModel):
    steps: int = 1


def test_a_params_model_that_ignores_unknown_keys_is_refused():
    registry = ArchitectureRegistry()
    registry.current_plugin = "p"
    with pytest.raises(PluginError, match=r"params model Loose ignores unknown keys, so a typo "
                                          r"in a suite would be silently dropped; derive it from "
                                          r"harness.Params"):
        registry.add("net", factory, params=Loose)


def test_a_factory_that_is_not_callable_is_refused():
    with pytest.raises(PluginError, match=r"the factory must be callable, got str 'pgd'"):
        AttackRegistry().add("x", "pgd")


def test_params_model_validates_values():
    entry = AttackRegistry().add("pgd", factory, params=StepParams)
    assert entry.make_params({"steps": "3"}).steps == 3
    assert entry.make_params(None).steps == 10
    with pytest.raises(ValidationError):
        entry.make_params({"step": 3})


def test_noparams_rejects_any_key():
    entry = AttackRegistry().add("fgsm", factory)
    with pytest.raises(ValidationError):
        entry.make_params({"eps": 0.1})


def test_add_takes_only_its_kinds_keywords():
    with pytest.raises(TypeError, match="needs_attack"):  # a defense-only field
        AttackRegistry().add("x", factory, needs_attack=True)


@pytest.mark.parametrize("name", ["", None, 3])
def test_name_must_be_nonempty_string(name):
    registry = AttackRegistry()
    registry.current_plugin = "p"
    with pytest.raises(PluginError, match="plugin 'p': attack name must be a non-empty string"):
        registry.add(name, factory)


def test_dataset_entry_shape_is_tuple_and_summary():
    registry = DatasetRegistry()
    registry.current_plugin = "data"
    entry = registry.add("d", factory, input_shape=[1, 8, 8], num_classes=4, description="tiny")
    assert entry.input_shape == (1, 8, 8)
    assert entry.summary() == {"name": "d", "plugin": "data", "version": "0", "description": "tiny",
                               "input_shape": [1, 8, 8], "num_classes": 4}
