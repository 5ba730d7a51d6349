"""Load everything a session can use, checked: plugins, their registries, the catalogue.

The command line's plugin folders and catalogues come first, then a suite's own ``plugins``
and ``catalogues`` (relative to the suite file). Catalogue presets are resolved on load, so a
mistake in one is reported at its own file and key before any suite is read.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from harness.catalogue import load_catalogue
from harness.components import Components, collect_registries
from harness.pluginmanager import build_plugin_manager
from harness.resolve import validate_catalogue
from harness.suite import LoadedSuite


def load_components(
    plugin_dirs: Iterable[Path] = (),
    catalogue_files: Iterable[Path] = (),
    blocked: Iterable[str] = (),
    autoload: bool | None = None,
) -> Components:
    pm = build_plugin_manager(plugin_dirs, blocked, autoload)
    components = Components(pm, collect_registries(pm), load_catalogue(catalogue_files))
    validate_catalogue(components)
    return components


def load_suite_components(suite: LoadedSuite, plugin_dirs: Iterable[Path] = (),
                          catalogue_files: Iterable[Path] = (), blocked: Iterable[str] = ()
                          ) -> Components:
    """The components a suite runs with: the command line's, then the suite's own."""
    return load_components([*plugin_dirs, *suite.existing_paths("plugins")],
                           [*catalogue_files, *suite.existing_paths("catalogues")], blocked)
