"""Cross-attack generalization per trained model: robust accuracy on the threat it was trained
against ("seen") and on the other threat models ("unseen"), the quantity Liu et al. (CVPR 2023)
rank architectures by.

Seen attacks share the training attack's norm and eps; unseen attacks use another norm. Attacks
of the training norm at another eps are neither (a budget change, not a new threat model). Each
side is the per-example worst case over its attacks, computed seed by seed, so the gap
(seen − unseen) and the ratio (unseen / seen) get intervals over seeds like every other number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from harness.matrix import Key, Matrix, worst_case
from harness.stats import Interval, t_interval

RATIO = "unseen/seen"


@dataclass(frozen=True)
class SeenUnseen:
    key: Key
    threat: tuple[str, float]
    seen: list[str]
    unseen: list[str]
    seen_accuracy: Interval
    unseen_accuracy: Interval
    gap: Interval  # seen − unseen
    ratio: Interval | None  # unseen / seen; None when some seed has no seen-robust example


def split_attacks(matrix: Matrix, threat: tuple[str, float]) -> tuple[list[str], list[str]]:
    norm, eps = threat
    seen = [a for a, (n, e) in matrix.threats.items() if n == norm and math.isclose(e, eps)]
    unseen = [a for a, (n, _) in matrix.threats.items() if n != norm]
    return seen, unseen


def seen_unseen(matrix: Matrix) -> list[SeenUnseen]:
    """One entry per adversarially trained row with at least one seen and one unseen attack."""
    found = []
    for key, _, _ in matrix.rows:
        threat = matrix.training_threat.get(key)
        if threat is None:
            continue
        seen, unseen = split_attacks(matrix, threat)
        if not seen or not unseen:
            continue
        pairs = [(worst_case(o, seen), worst_case(o, unseen)) for o in matrix.outcomes[key]]
        if any(s is None or u is None for s, u in pairs):
            continue  # a failed cell: no number rather than a number over fewer attacks
        seen_acc = [float(s.mean()) for s, _ in pairs]  # type: ignore[union-attr]
        unseen_acc = [float(u.mean()) for _, u in pairs]  # type: ignore[union-attr]
        ratio = (t_interval([u / s for s, u in zip(seen_acc, unseen_acc, strict=True)])
                 if all(seen_acc) else None)
        found.append(SeenUnseen(key, threat, seen, unseen, t_interval(seen_acc),
                                t_interval(unseen_acc),
                                t_interval([s - u for s, u in zip(seen_acc, unseen_acc,
                                                                  strict=True)]), ratio))
    return found


def table(entries: list[SeenUnseen], row_keys: list[str]) -> tuple[list[str], list[list[str]]]:
    """Header and rows: percentages as mean ± half the 95% interval over seeds."""
    header = [*row_keys, "trained on", "seen", "unseen", "seen %", "unseen %", "gap (pp)",
              RATIO]
    rows = [[*e.key, f"{e.threat[0]} {e.threat[1]:g}", ", ".join(e.seen), ", ".join(e.unseen),
             e.seen_accuracy.text(100), e.unseen_accuracy.text(100), e.gap.text(100),
             "—" if e.ratio is None else e.ratio.text(1, ".3f")] for e in entries]
    return header, rows


def markdown(entries: list[SeenUnseen], row_keys: list[str]) -> str:
    if not entries:
        return ""
    header, rows = table(entries, row_keys)
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if i < len(row_keys) + 3 else "---:"
                            for i in range(len(header))) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])
