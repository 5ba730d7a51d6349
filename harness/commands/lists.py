"""``harness list`` and ``harness plugins``: what the plugins and catalogues provide. Both
answer from the registration index (``harness.listing``) while nothing it depends on changed,
so neither imports torch or a plugin then."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from harness.commands.common import get_components, plugin_options, warn_unmatched
from harness.kinds import KINDS

if TYPE_CHECKING:
    from harness.components import Components


@click.command(name="list")
@click.argument("kind", required=False, type=click.Choice(list(KINDS)))
@click.argument("pattern", required=False, default="*")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@plugin_options
def list_(kind: str | None, pattern: str, as_json: bool, plugins_dirs: tuple[Path, ...],
          catalogues: tuple[Path, ...], blocked: tuple[str, ...]) -> None:
    """List registered factories and catalogue presets, with wildcards and provenance."""
    import fnmatch

    rows = [row for row in _listing(plugins_dirs, catalogues, blocked)["rows"]
            if (kind is None or row["kind"] == kind) and fnmatch.fnmatchcase(row["name"], pattern)]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for k in [kind] if kind else KINDS:
        found = [r for r in rows if r["kind"] == k]
        if not kind and not found:
            continue
        click.echo(f"{k}:")
        for r in found:
            click.echo(f"  {r['name']:28} {r['type']:8} {r['from']:28} {r['description']}")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@plugin_options
def plugins(as_json: bool, plugins_dirs: tuple[Path, ...], catalogues: tuple[Path, ...],
            blocked: tuple[str, ...]) -> None:
    """List loaded plugins: name, source, version, location and hooks."""
    infos = _listing(plugins_dirs, catalogues, blocked)["plugins"]
    if as_json:
        click.echo(json.dumps(infos, indent=2))
        return
    for info in infos:
        click.echo(f"{info['name']:24} {info['source']:11} {info['version']:8} {info['location']}")
        click.echo(f"{'':24} hooks: {', '.join(info['hooks'])}")


def _listing(plugins_dirs: Iterable[Path], catalogues: Iterable[Path],
             blocked: Iterable[str]) -> dict[str, Any]:
    """What ``list`` and ``plugins`` print: from the index while no plugin, catalogue or
    setting changed (no torch, no plugin imported), else loaded and indexed."""
    from dataclasses import asdict

    from harness import listing

    key = listing.fingerprint(plugins_dirs, catalogues, blocked)
    index = listing.load(key)
    if index is not None:
        warn_unmatched(index["unmatched_blocks"])
        return index
    components = get_components(plugins_dirs, catalogues, blocked)
    index = {"rows": [row for kind in KINDS for row in _list_rows(components, kind)],
             "plugins": [asdict(info) for info in components.pm.infos.values()],
             "unmatched_blocks": components.pm.unmatched_blocks()}
    listing.save(key, index)
    return json.loads(json.dumps(index))  # as the index gives it back: a miss prints the same


def _list_rows(components: Components, kind: str) -> list[dict[str, Any]]:
    rows = []
    if KINDS[kind].hook:
        for entry in components.registries[kind].list():
            rows.append({"kind": kind, "name": entry.name, "type": "factory",
                         "from": f"plugin {entry.plugin}", **_extra(entry)})
    if KINDS[kind].presets:
        for preset in components.catalogue.items(kind):
            spec = preset.spec
            rows.append({"kind": kind, "name": preset.name, "type": "preset",
                         "from": preset.source.name, "description": preset.description,
                         "uses": getattr(spec, "factory", getattr(spec, "defense", None))})
    return rows


def _extra(entry: Any) -> dict[str, Any]:
    """A registry entry's summary without what the row already says (name, plugin)."""
    summary = entry.summary()
    summary.pop("name")
    summary.pop("plugin")
    return summary
