"""Validation of a ZV store, at the reference's conformance levels 1-5.

Mirrors ``zarr_vectors.validate.validate`` of zarr-vectors 0.9.2: the same name,
the same levels (1 structure, 2 metadata, 3 consistency, 4 geometry conformance,
5 multiscale, run cumulatively) and a result with ``ok``, ``errors``,
``warnings``, ``passed`` and ``summary()``. The checks run in the native engine
(libzvf, the same code as ``zvf validate``); the result also carries structured
``findings`` (level, severity, store key, message).

An invalid store is a result with ``ok == False``, never an exception. A path
with nothing at it raises ``StoreNotFoundError``; a level outside 1..5 raises
``InvalidInputError``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import _zvf
from .._convert import store_url
from ..errors import InvalidInputError

MAX_LEVEL = 5


@dataclass(frozen=True)
class Finding:
    level: int
    severity: str  # "error" | "warning"
    key: str       # store key it concerns ("0/vertices/c/0/1/2"); "" for the store
    message: str

    def __str__(self) -> str:
        return f"{self.key}: {self.message}" if self.key else self.message


@dataclass
class ValidationResult:
    """Outcome of :func:`validate`; ``ok`` is True when there are no errors."""

    level: int
    findings: list[Finding] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)

    @property
    def errors(self) -> list[str]:
        return [str(f) for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[str]:
        return [str(f) for f in self.findings if f.severity == "warning"]

    def summary(self) -> str:
        lines = [
            f"Level {self.level} validation: {'PASS' if self.ok else 'FAIL'}",
            f"  {len(self.passed)} passed, {len(self.warnings)} warnings, {len(self.errors)} errors",
        ]
        lines += [f"  ERROR: {e}" for e in self.errors]
        lines += [f"  WARN:  {w}" for w in self.warnings]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "ok": self.ok,
            "findings": [vars(f).copy() for f in self.findings],
            "passed": list(self.passed),
        }


def validate(store_path, *, level: int = 3, threads: int = 0) -> ValidationResult:
    """Validate the store at ``store_path`` (path, ``file://`` or ``s3://`` URL) up to ``level`` (1-5)."""
    if isinstance(level, bool) or not isinstance(level, int):
        raise InvalidInputError(f"level must be an int from 1 to {MAX_LEVEL}, got {level!r}")
    if not 1 <= level <= MAX_LEVEL:
        raise InvalidInputError(f"level must be 1 to {MAX_LEVEL}, got {level}")
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
        raise InvalidInputError(f"threads must be an int >= 0, got {threads!r}")
    raw = _zvf.validate(store_url(store_path), level, threads)
    return ValidationResult(
        level=raw["level"],
        findings=[Finding(**f) for f in raw["findings"]],
        passed=list(raw["passed"]),
    )


__all__ = ["Finding", "ValidationResult", "validate"]
