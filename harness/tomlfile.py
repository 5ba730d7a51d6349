"""Read TOML files and turn pydantic errors into one-line messages naming file, key path and fix."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomllib
from pydantic import BaseModel, ValidationError

from harness.errors import UserError


def read_toml(path: Path, what: str = "file") -> dict[str, Any]:
    if not path.exists():
        raise UserError(f"{path}: {what} not found; check the path")
    if path.is_dir():
        raise UserError(f"{path}: is a folder; give the path of a {what}")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: not valid TOML: {exc}; fix the syntax at that line") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot be read: {exc}") from None


def relative_to(path: str, base: Path) -> Path:
    """A path as a user wrote it in a file: ``~`` expanded, relative ones against ``base``
    (the folder of the file that names it)."""
    candidate = Path(path).expanduser()
    return candidate if candidate.is_absolute() else base / candidate


@dataclass(frozen=True)
class Where:
    """A place in a user's file: the file and the key path inside it, for error messages."""

    source: str
    loc: tuple[str | int, ...] = ()

    def child(self, *parts: str | int) -> Where:
        return Where(self.source, (*self.loc, *parts))

    def __str__(self) -> str:
        return f"{self.source}: {key_path(self.loc)}" if self.loc else self.source

    def error(self, message: str) -> UserError:
        return UserError(f"{self}: {message}")


def key_path(loc: Sequence[str | int]) -> str:
    """('attacks', 2, 'eps') → 'attacks[2].eps'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _fields_at(model: type[BaseModel], loc: Sequence[str | int]) -> list[str]:
    """Field names of the (sub)model that ``loc`` points into, for did-you-mean on extra keys."""
    current: Any = model
    for part in loc:
        if isinstance(part, int) or not (isinstance(current, type) and
                                         issubclass(current, BaseModel)):
            continue
        field = current.model_fields.get(part)
        if field is None:
            return []
        annotation = field.annotation
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        for arg in list(candidates):
            candidates.extend(getattr(arg, "__args__", ()))
        current = next((c for c in candidates if isinstance(c, type) and
                        issubclass(c, BaseModel)), None)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def describe_validation_error(
    error: ValidationError, where: Where, model: type[BaseModel] | None = None
) -> str:
    """The first error of a pydantic ValidationError as 'file: key.path: message. fix'."""
    errors = error.errors()
    # An unknown key usually explains a "missing" one (a typo), so report it first.
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    inner = list(first["loc"])
    source, path = where.source, key_path([*where.loc, *inner])
    if first["type"] == "extra_forbidden":
        key = str(inner[-1])
        choices = _fields_at(model, inner[:-1]) if model else []
        close = difflib.get_close_matches(key, choices, n=1, cutoff=0.6)
        hint = f" Did you mean: {close[0]}?" if close else ""
        allowed = f" Allowed keys: {', '.join(choices)}." if choices else ""
        return f"{source}: {path}: unknown key {key!r}.{hint}{allowed}"
    if first["type"] == "missing":
        return f"{source}: {path}: required key is missing; add it"
    if first["type"] == "value_error":  # our own validators already quote the value
        return f"{source}: {path}: {first['msg'].removeprefix('Value error, ')}"
    got = first.get("input")
    shown = "" if isinstance(got, dict | list) else f" (got {got!r})"
    return f"{source}: {path}: {first['msg']}{shown}"


def validate(model: type[BaseModel], data: Any, where: Where) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise UserError(describe_validation_error(exc, where, model)) from None
