"""What every benchmark script shares: interleaved timing, the machine's other load, ratios.

On a shared 2-core machine other processes can slow a run many-fold, so methods are timed
interleaved (the order rotates every repeat), each timing notes how many CPUs other processes
kept busy meanwhile (Linux /proc/stat), and comparisons use both the minimum times and the
paired ratios of runs adjacent in time. With one torch thread the comparisons can use the
process's CPU time instead of wall time (``clock="cpu"``): time spent descheduled while other
processes ran is then not counted, which steadies ratios on a busy machine (what it does not
remove: shared caches and memory bandwidth).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

#: The checkout these scripts belong to comes first on the path (before an installed harness,
#: e.g. another worktree's editable install): scripts import common before harness.
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def system_busy_seconds() -> float | None:
    """CPU seconds spent busy since boot (user, nice, system, irq, softirq, steal), or None."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(v) for v in stat.readline().split()[1:9]]
        return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def busy_cpus(window: float = 0.5) -> float | None:
    """How many CPUs other processes kept busy while this one slept for ``window`` seconds
    (this process's own threads, e.g. OpenMP workers still spinning, are not counted)."""
    before, own = system_busy_seconds(), time.process_time()
    time.sleep(window)
    after, own_after = system_busy_seconds(), time.process_time()
    if before is None or after is None:
        return None
    return max(0.0, (after - before) - (own_after - own)) / window


def report_load(when: str, threads: int) -> str:
    """A line saying how busy the CPUs are (sampled while sleeping), with a warning if busy."""
    busy, cpus = busy_cpus(), os.cpu_count() or 1
    if busy is None:
        return f"other load {when}: unknown (no /proc/stat)"
    line = f"other load {when}: {busy:.2f} of {cpus} CPUs busy"
    if busy > 0.3 and threads + busy > cpus:
        line += (f"  WARNING: with {threads} thread(s) on {cpus} CPUs, times can inflate and "
                 "vary; compare the paired ratios")
    return line


@dataclass
class Timing:
    seconds: float
    other_load: float | None  # CPUs other processes kept busy during the run
    value: object = None  # what the run returned
    cpu_seconds: float = 0.0  # this process's CPU time over the run (all its threads)


def timed(run: Callable[[], object]) -> Timing:
    busy, own, started = system_busy_seconds(), time.process_time(), time.perf_counter()
    value = run()
    seconds = time.perf_counter() - started
    busy_after, own_after = system_busy_seconds(), time.process_time()
    load = None
    if busy is not None and busy_after is not None:
        load = max(0.0, ((busy_after - busy) - (own_after - own)) / seconds)
    return Timing(seconds, load, value, own_after - own)


@dataclass
class Runs:
    """Interleaved timings of named methods; ``ratio(a, b)`` compares them two ways, on the
    ``clock`` chosen: "wall" or "cpu" (the process's CPU time; meaningful with one thread)."""

    times: dict[str, list[Timing]] = field(default_factory=dict)
    clock: str = "wall"

    def _seconds(self, timing: Timing) -> float:
        return timing.cpu_seconds if self.clock == "cpu" else timing.seconds

    def best(self, name: str) -> float:
        return min(self._seconds(t) for t in self.times[name])

    def paired(self, a: str, b: str) -> list[float]:
        return [self._seconds(x) / self._seconds(y)
                for x, y in zip(self.times[a], self.times[b], strict=True)]

    def ratio(self, a: str, b: str) -> tuple[float, float]:
        """(ratio of the minimum times, median of the paired ratios) of a over b."""
        return self.best(a) / self.best(b), statistics.median(self.paired(a, b))

    def loads(self) -> list[float]:
        return [t.other_load for ts in self.times.values() for t in ts if t.other_load is not None]

    def table(self, indent: str = "  ") -> str:
        rows = [f"{indent}{'method':28} {'min s':>8} {'median s':>9} {'min cpu s':>10} "
                f"{'other load (CPUs)':>18}"]
        for name, ts in self.times.items():
            fastest = min(ts, key=lambda t: t.seconds)
            load = "n/a" if fastest.other_load is None else f"{fastest.other_load:.2f}"
            rows.append(f"{indent}{name:28} {fastest.seconds:8.3f} "
                        f"{statistics.median(t.seconds for t in ts):9.3f} "
                        f"{min(t.cpu_seconds for t in ts):10.3f} {load:>18}")
        loads = self.loads()
        if loads:
            rows.append(f"{indent}other load over all timed runs: {min(loads):.2f}-"
                        f"{max(loads):.2f} CPUs")
        return "\n".join(rows)


def interleave(methods: dict[str, Callable[[], object]], repeats: int,
               clock: str = "wall") -> Runs:
    """Each method ``repeats`` times; the order rotates every repeat so drifting load hits all
    methods alike (and none always runs first, after the previous one warmed the caches)."""
    runs = Runs({name: [] for name in methods}, clock)
    names = list(methods)
    for repeat in range(repeats):
        shift = repeat % len(names)
        for name in names[shift:] + names[:shift]:
            runs.times[name].append(timed(methods[name]))
    return runs


def verdict(value: float, target: float, below: bool = True) -> str:
    ok = value <= target if below else value >= target
    return f"(target {'<=' if below else '>='} {target:g}: {'ok' if ok else 'MISSED'})"
