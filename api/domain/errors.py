"""The one exception type for expected refusals (errors-as-data, DESIGN.md §3)."""

from __future__ import annotations


class DomainError(Exception):
    """An expected refusal: ``code`` is stable, ``message`` is for the user (Chinese), ``field`` names the input."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {self.message!r}, field={self.field!r})"
