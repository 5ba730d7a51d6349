"""The read-only commands: ``harness list`` and ``harness schema``."""

import json


def test_list_metrics_with_their_defaults(run_cli):
    result = run_cli("list", "metrics", "--json")
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert set(rows) >= {"params", "flops", "feature-map", "sparsity", "local-lipschitz",
                         "spectral-bound", "cell-bound"}
    assert {name for name, row in rows.items() if row["default"]} == {
        "params", "flops", "feature-map", "sparsity"}


def test_list_filters_with_a_wildcard_and_names_the_source(run_cli):
    result = run_cli("list", "attacks", "aa-standard-*")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "attacks:"
    assert {line.split()[0] for line in lines[1:]} == {
        "aa-standard-linf-8", "aa-standard-l2-0.5", "aa-standard-l1-12", "aa-standard-linf-0.1",
        "aa-standard-l2-1.0"}
    assert all("attacks-autoattack.toml" in line for line in lines[1:])


def test_schema_accepts_eps_as_users_write_it(run_cli):
    """An editor using the schema must not flag eps = "8/255" or eps = [0.1, 0.2]."""
    result = run_cli("schema")
    assert result.exit_code == 0, result.output
    eps = json.loads(result.stdout)["$defs"]["AttackRef"]["properties"]["eps"]
    types = [option.get("type") for option in eps["anyOf"]]
    assert types == ["number", "string", "array", "null"]
