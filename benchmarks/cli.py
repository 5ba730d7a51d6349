"""Benchmark: how long the command line takes to answer, and what it imports to do so.

Each command runs in a fresh interpreter (as a user runs it), the commands interleaved over
the repeats; printed per command: minimum and median wall time, and whether torch, timm,
torchattacks, ART (``art``) or pyautoattack were imported. ``list`` and ``plugins`` answer from
the registration index (``harness/listing.py``) once it exists; the "index miss" row gives
every run an empty index folder (the first run after a plugin changed). Targets: ``harness
list`` <= 1.5 s; ``--help``, ``list``, ``plugins`` and ``validate`` of a preset-only suite
import no toolkit.

Run ``.venv/bin/python benchmarks/cli.py`` (about a minute).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, busy_cpus

COMMANDS = {
    "harness --help": ["--help"],
    "harness list": ["list"],
    "harness list (index miss)": ["list"],
    "harness list attacks 'pgd*'": ["list", "attacks", "pgd*"],
    "harness plugins": ["plugins"],
    "harness validate quickstart": ["validate", "suites/quickstart.toml"],
}
WATCHED = ("torch", "timm", "torchattacks", "art", "pyautoattack")
PROBE = """
import atexit, sys
atexit.register(lambda: open({out!r}, "w").write(" ".join(sorted({{m.split(".")[0] for m in sys.modules}}))))
sys.argv = ["harness", *{args!r}]
from harness.cli import main
main()
"""


def run(args: list[str], out: Path, cache: Path | None) -> float:
    env = {**os.environ, "PYTHONPATH": ""}
    if cache is not None:
        env["HARNESS_CACHE"] = tempfile.mkdtemp(dir=cache)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", PROBE.format(out=str(out), args=args)], cwd=ROOT,
                   check=True, stdout=subprocess.DEVNULL, env=env)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    busy = busy_cpus()
    print(f"other load at start: {busy:.2f} CPUs" if busy is not None else "")
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    imported: dict[str, set[str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "modules.txt"
        names = list(COMMANDS)
        for repeat in range(args.repeats):
            for name in names[repeat % len(names):] + names[:repeat % len(names)]:
                times[name].append(run(COMMANDS[name], out,
                                       Path(tmp) if "index miss" in name else None))
                imported[name] = set(out.read_text().split())
    print(f"{'command':32} {'min s':>7} {'median s':>9}  imports")
    for name, values in times.items():
        watched = [m for m in WATCHED if m in imported[name]] or ["none of " + ", ".join(WATCHED)]
        print(f"{name:32} {min(values):7.2f} {statistics.median(values):9.2f}  "
              f"{', '.join(watched)}")
    best = min(times["harness list"])
    print(f"harness list: {best:.2f} s (target <= 1.5: {'ok' if best <= 1.5 else 'MISSED'})")
    busy = busy_cpus()
    print(f"other load at end: {busy:.2f} CPUs" if busy is not None else "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
