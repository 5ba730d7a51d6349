"""A study's own question answered from its stored run, as the Markdown of ``docs/pilots.md``.

A questions file (``harness.questions``: one ``[[study]]`` table per study) says, for each
pilot suite, what the paper claims and which number tests it: a rank correlation (``metric``
against ``target`` within one ``recipe``) or a paired comparison (row ``first`` against row
``second`` on ``target``), and the sign the paper expects. The verdict is mechanical, so the
document reports what was measured, never what was hoped for:

- **shows up**: the 95% interval excludes 0 on the claimed side (for a correlation also the
  exact permutation p < 0.05);
- **does not show up**: the same, on the opposite side;
- **cannot be told at this scale**: anything else (the estimate's sign is still reported).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness import analyze
from harness.analyze import Pair, small_n_note
from harness.compare import ColumnComparison, compare_rows, find_row, row_label
from harness.compare import markdown as compare_markdown
from harness.errors import UserError
from harness.figures import write_paired, write_scatter
from harness.matrix import Matrix
from harness.questions import Question, load_questions
from harness.report import Findings, markdown_table
from harness.stats import Interval
from harness.store import Store

SHOWS, OPPOSITE, UNTOLD = "shows up", "does not show up", "cannot be told at this scale"


@dataclass(frozen=True)
class Answer:
    question: Question
    matrix: Matrix
    result: str  # the number and its interval, in words
    summary: str  # the same, short, for the summary table
    verdict: str
    reason: str
    figure: Path | None
    wall_seconds: float | None
    context: str  # Markdown a reviewer checks the number against: the group's table
    check: str  # rows that did not train, named before the number is read


def _verdict(sign: float, decided: bool, expect: str) -> str:
    if not decided:
        return UNTOLD
    return SHOWS if (sign > 0) == (expect == "positive") else OPPOSITE


def _side(verdict: str) -> str:
    return "the claimed side" if verdict == SHOWS else "the opposite side"


def _leaning(sign: float | None, expect: str) -> str:
    if not sign:
        return "The estimate is 0"
    side = "the claimed" if (sign > 0) == (expect == "positive") else "the opposite"
    return f"The estimate points {side} way"


def _correlation(q: Question, matrix: Matrix, found: Findings
                 ) -> tuple[str, str, str, str, Pair]:
    groups = {p.group for p in found.pairs}
    chosen = [g for g in groups if q.recipe is None or g[-1] == q.recipe]
    if len(chosen) != 1:
        raise UserError(f"study {q.suite!r}: recipe {q.recipe!r} does not name one training "
                        f"group of the run; groups: {', '.join(' / '.join(g) for g in groups)}")
    pair = next((p for p in found.pairs if p.group == chosen[0] and p.metric == q.metric
                 and p.target == q.target), None)
    if pair is None:
        raise UserError(f"study {q.suite!r}: no correlation of {q.metric!r} with {q.target!r} "
                        f"in the run; metrics: {', '.join(dict.fromkeys(p.metric for p in found.pairs))}")
    c = pair.correlation
    expected = "< 0" if q.expect == "negative" else "> 0"
    if c.rho is None:
        text = f"ρ({q.metric}, {q.target}) undefined: {q.metric} is constant"
        return text, text, UNTOLD, "Nothing to rank.", pair
    interval = "no interval (n < 4)" if c.low is None else f"95% CI [{c.low:+.2f}, {c.high:+.2f}]"
    result = (f"Spearman ρ({q.metric}, {q.target}) = {c.rho:+.2f}, {interval}, exact "
              f"permutation p = {c.p_value:.2g}, n = {c.n} architectures")
    short = "" if c.low is None else f" [{c.low:+.2f}, {c.high:+.2f}]"
    summary = (f"ρ({q.metric}, {q.target}) = {c.rho:+.2f}{short}, p = {c.p_value:.2g} "
               f"(claimed {expected})")
    verdict = _verdict(c.rho, c.conclusive(), q.expect)
    reason = (f"{_leaning(c.rho, q.expect)}, but not conclusively. {small_n_note(c.n)}"
              if verdict == UNTOLD else f"p < 0.05 and the interval excludes 0 on {_side(verdict)}.")
    return result, summary, verdict, reason, pair


def _comparison(q: Question, matrix: Matrix) -> tuple[str, str, str, str, ColumnComparison]:
    first, second = find_row(matrix, q.first or ""), find_row(matrix, q.second or "")
    found = compare_rows(matrix, first, second, [q.target])
    if not found:
        raise UserError(f"study {q.suite!r}: {q.target!r} is missing for one of the two rows")
    r = found[0]
    primary: Interval = r.over_seeds if r.over_seeds is not None else r.test.difference
    unit = (f"over {len(r.seeds)} seeds (t)" if r.over_seeds is not None else
            "over examples (paired bootstrap)")
    d = r.test.difference
    result = (f"{row_label(first)} − {row_label(second)} on {q.target}: "
              f"{100 * primary.mean:+.1f} pp, 95% CI {unit} [{100 * primary.low:+.1f}, "
              f"{100 * primary.high:+.1f}]; over examples [{100 * d.low:+.1f}, {100 * d.high:+.1f}]"
              f", McNemar exact p = {r.test.p_value:.2g} ({r.test.only_a} vs {r.test.only_b} "
              "discordant pairs)")
    summary = (f"{first[0]} − {second[0]} on {q.target}: {100 * primary.mean:+.1f} pp "
               f"[{100 * primary.low:+.1f}, {100 * primary.high:+.1f}] "
               f"(claimed {'> 0' if q.expect == 'positive' else '< 0'})")
    verdict = _verdict(primary.mean, primary.excludes_zero(), q.expect)
    reason = (f"{_leaning(primary.mean, q.expect)}, but the interval {unit} includes 0."
              if verdict == UNTOLD else f"The interval {unit} excludes 0 on {_side(verdict)}.")
    return result, summary, verdict, reason, r


def _wall_seconds(store: Store, suite: str) -> float | None:
    """The longest finished run of the suite in the store: the one that computed the cells."""
    times = [row["finished"] - row["started"] for row in store.runs()
             if row["suite_name"] == suite and row["finished"] is not None]
    return max(times) if times else None


def answer(q: Question, store: Store, matrix: Matrix, found: Findings,
           figures: Path | None) -> Answer:
    figure = None if figures is None else figures / f"{q.suite}.png"
    if q.metric is not None:
        result, summary, verdict, reason, pair = _correlation(q, matrix, found)
        if figure is not None and pair.correlation.rho is not None:
            write_scatter([pair], figure)
        context = ("Every correlation of the group (the question's pair is the one to read)",
                   analyze.markdown([p for p in found.pairs if p.group == pair.group], matrix,
                                    "####"))
        keys = analyze.groups(matrix)[pair.group]
    else:
        result, summary, verdict, reason, compared = _comparison(q, matrix)
        if figure is not None:
            write_paired(compared, q.first or "", q.second or "", figure)
        a, b = find_row(matrix, q.first or ""), find_row(matrix, q.second or "")
        context = ("The two rows on every column", compare_markdown(compare_rows(matrix, a, b),
                                                                     a, b))
        keys = [a, b]
    return Answer(q, matrix, result, summary, verdict, reason,
                  figure if figure is not None and figure.exists() else None,
                  _wall_seconds(store, matrix.suite),
                  f"<details><summary>{context[0]}</summary>\n\n{context[1]}\n\n</details>",
                  analyze.undertrained_note(analyze.undertrained(matrix, keys),
                                            matrix.row_keys.index("architecture")))


def _section(number: int, a: Answer, relative_to: Path | None) -> list[str]:
    q, m = a.question, a.matrix
    seeds = sorted({len(s) for s in m.seeds.values()})
    lines = [f"## {number}. {q.study}", "", f"*{q.paper}*", "",
             f"**Claim.** {q.claim}", "",
             f"**Pilot.** Suite `{q.suite}` (run {m.run_id}): {len(m.rows)} rows × "
             f"{'/'.join(map(str, seeds))} seed(s)"
             + (f", {a.wall_seconds / 60:.1f} min run time as recorded in its store"
                if a.wall_seconds else "")
             + (f". {q.scale}" if q.scale else "."), "",
             f"**Result.** {a.result}.", "",
             f"**Direction: {a.verdict}.** {a.reason}", ""]
    if a.check:
        lines += [f"**{a.check.split(':')[0]}:**{a.check.split(':', 1)[1]}", ""]
    if a.figure is not None:
        where = a.figure.relative_to(relative_to) if relative_to else a.figure
        lines += [f"![{q.suite}]({where.as_posix()})", ""]
    lines += ["<details><summary>The pilot's matrix (accuracy %, mean ± 95% t-interval over "
              "seeds)</summary>", "", markdown_table(m), "", "</details>", "", a.context, ""]
    return lines


def document(answers: list[Answer], missing: list[Question], command: str,
             relative_to: Path | None) -> str:
    """The whole findings document: a summary table, then one section per study."""
    lines = ["# Pilot studies: does each study's direction show up at digits scale?", "",
             f"Generated from the stored runs by `{command}`; do not edit by hand. "
             "Each pilot runs a study's protocol on CPU-sized data; its question is one number "
             "with a 95% interval, and the direction is read mechanically: **shows up** when the "
             "interval excludes 0 on the paper's side (a correlation also needs exact "
             "permutation p < 0.05), **does not show up** when it excludes 0 on the other side, "
             "otherwise **cannot be told at this scale**. A pilot says whether a protocol runs "
             "and what a small run can and cannot see; it does not confirm or refute a "
             "paper.", "",
             "| study | pilot's number (95% CI) | direction |", "|---|---|---|"]
    lines += [f"| {a.question.study} | {a.summary} | {a.verdict} |" for a in answers]
    lines.append("")
    for number, a in enumerate(answers, 1):
        lines += _section(number, a, relative_to)
    if missing:
        lines += ["## Not run", "", *(f"- {q.study} (suite `{q.suite}`): no run given"
                                      for q in missing), ""]
    return "\n".join(lines)



def answer_runs(path: Path, runs: list[tuple[Store, Matrix, Findings]],
                markdown_path: Path | None, command: str) -> str:
    """The document for the runs given, each matched to its study by suite name; figures go to
    a folder beside ``markdown_path`` named after it (none when printing)."""
    questions = load_questions(path)
    known = {q.suite for q in questions}
    unknown = [m.suite for _, m, _ in runs if m.suite not in known]
    if unknown:
        raise UserError(f"{path}: no study for suite {unknown[0]!r}; studies: "
                        f"{', '.join(sorted(known))}")
    figures = None
    if markdown_path is not None:
        figures = markdown_path.parent / markdown_path.stem
        figures.mkdir(parents=True, exist_ok=True)
    ran = {m.suite: (store, m, found) for store, m, found in runs}
    answers = [answer(q, *ran[q.suite], figures) for q in questions if q.suite in ran]
    missing = [q for q in questions if q.suite not in ran]
    return document(answers, missing, command,
                    markdown_path.parent if markdown_path is not None else None)
