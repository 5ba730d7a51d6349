"""The study-questions file ``harness analyze --questions`` reads, and ``harness validate``
checks: one ``[[study]]`` table per pilot suite, saying what the paper claims and which number
of the pilot's run tests it (``harness.findings`` answers them).

It lives beside the pilot suites, so ``harness validate suites/pilots/*.toml`` meets it: a TOML
file with ``[[study]]`` tables and none of a suite's keys is taken for a questions file and
checked as one (it parses, and each study names a suite of its folder) rather than failing as a
suite with an unknown key; the commands that take one suite (``run``, ``crosscheck``) say it
is a questions file (``harness.suite.load_suite``). Kept apart from ``findings`` so that
telling the two apart imports none of the statistics.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import tomllib
from pydantic import BaseModel, ConfigDict, model_validator

from harness.errors import UserError
from harness.suite import is_questions_data, load_suite
from harness.tomlfile import Where, read_toml, validate


class Question(BaseModel):
    """One study's claim and the number from its pilot that tests it."""

    model_config = ConfigDict(extra="forbid")

    suite: str  # the pilot suite's name: its run is found by it
    study: str
    paper: str
    claim: str
    target: str  # an attack column, "worst case" or "unseen/seen"
    expect: Literal["positive", "negative"]  # the sign of ρ, or of first − second
    metric: str | None = None  # a correlation: this metric within one recipe ...
    recipe: str | None = None
    first: str | None = None  # ... or a comparison: row first against row second
    second: str | None = None
    scale: str = ""  # how the pilot differs from the paper's protocol

    @model_validator(mode="after")
    def _one_kind(self) -> Question:
        comparison = self.first is not None or self.second is not None
        if (self.metric is not None) == comparison or (comparison and None in (self.first,
                                                                             self.second)):
            raise ValueError("give either metric (and recipe) for a correlation, or first and "
                             "second for a comparison")
        return self


class QuestionFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    study: list[Question]


def load_questions(path: Path) -> list[Question]:
    return validate(QuestionFile, read_toml(path, "questions file"), Where(str(path))).study


def is_questions_file(path: Path) -> bool:
    """Whether ``path`` reads as a questions file: ``[[study]]`` tables and no suite key. A file
    that cannot be read is not one (loading it as a suite says what is wrong with it)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False
    return is_questions_data(data)


def check_questions(path: Path) -> list[Question]:
    """The questions of ``path``, each naming a suite of the same folder (by its name): a
    study whose suite is not there could never be answered."""
    questions = load_questions(path)
    names = set()
    for suite in sorted(path.parent.glob("*.toml")):
        if suite.resolve() == path.resolve() or is_questions_file(suite):
            continue
        try:
            names.add(load_suite(suite).name)
        except UserError:  # a broken suite is reported when it is validated itself
            continue
    for i, question in enumerate(questions):
        if question.suite not in names:
            raise Where(str(path), ("study", i, "suite")).error(
                f"no suite named {question.suite!r} in {path.parent}; suites there: "
                f"{', '.join(sorted(names)) or 'none'}")
    return questions
