"""``harness eval``: a model against attacks without writing a suite. The suite is written for
the user into the output folder and run as any other, so the run is cached, resumable and
reported the same way."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from harness.commands.common import plugin_options
from harness.commands.run import run_suite


@click.command(name="eval")
@click.argument("model")
@click.option("--dataset", default="digits", show_default=True, help="Dataset name or preset.")
@click.option("--attack", "attacks", multiple=True, required=True,
              help="Attack preset (repeatable), e.g. aa-standard-linf-8.")
@click.option("--weights", default=None, help="Weights file (.pt, .pth, .safetensors).")
@click.option("--sha256", default=None, help="The weights file's sha256, checked.")
@click.option("--url", default=None, help="Download the weights from here (needs --sha256).")
@click.option("--max-examples", type=click.IntRange(min=1), default=None,
              help="First N test examples (default: all).")
@click.option("--batch-size", type=click.IntRange(min=1), default=256, show_default=True)
@click.option("--output", type=click.Path(path_type=Path),
              help="Output folder (default: runs/eval-<model>).")
@click.option("--device", default=None, help="auto, cpu, cuda, cuda:N or mps.")
@click.option("--data-root", type=click.Path(path_type=Path), default=Path("data"),
              show_default=True)
@plugin_options
def eval_(model: str, dataset: str, attacks: tuple[str, ...], weights: str | None,
          sha256: str | None, url: str | None, max_examples: int | None, batch_size: int,
          output: Path | None, device: str | None, data_root: Path,
          plugins_dirs: tuple[Path, ...], catalogues: tuple[Path, ...],
          blocked: tuple[str, ...]) -> None:
    """Evaluate MODEL (a preset, a registered architecture or a zoo entry, with --weights)
    against each --attack, without writing a suite: the suite is written for you into the
    output folder, so the run is cached, resumable and reported like any other."""
    name = "eval-" + "".join(c if c.isalnum() or c in "-_." else "-" for c in model)
    output = output or Path("runs") / name
    output.mkdir(parents=True, exist_ok=True)
    suite = output / "eval-suite.toml"
    suite.write_text(eval_suite(name, model, dataset, attacks, weights, sha256, url,
                                max_examples, batch_size), encoding="utf-8")
    run_suite(suite, output, device, data_root, False, "local", None,
              [Path(p).resolve() for p in plugins_dirs],
              [Path(p).resolve() for p in catalogues], blocked)


def eval_suite(name: str, model: str, dataset: str, attacks: tuple[str, ...],
               weights: str | None, sha256: str | None, url: str | None,
               max_examples: int | None, batch_size: int) -> str:
    """The suite ``harness eval`` runs (weights paths made absolute: it lives elsewhere)."""
    table = {}
    if weights is not None:
        table["path"] = str(Path(weights).resolve())
    if url is not None:
        table["url"] = url
    if sha256 is not None:
        table["sha256"] = sha256
    entry = {"name": model, **({"weights": table} if table else {})}
    lines = [f"name = {json.dumps(name)}", f"datasets = [{json.dumps(dataset)}]",
             f"architectures = [{_toml_table(entry)}]",
             f"attacks = [{', '.join(json.dumps(a) for a in attacks)}]", "",
             "[evaluation]", f"batch_size = {batch_size}"]
    if max_examples is not None:
        lines.append(f"max_examples = {max_examples}")
    return "\n".join(lines) + "\n"


def _toml_table(values: dict[str, Any]) -> str:
    """An inline TOML table of strings and nested tables (what eval_suite writes)."""
    items = [f"{key} = {_toml_table(value) if isinstance(value, dict) else json.dumps(value)}"
             for key, value in values.items()]
    return "{ " + ", ".join(items) + " }"
