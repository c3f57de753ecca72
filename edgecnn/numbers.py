"""Finite, in-range numbers: the one check every numeric setting goes through before work starts.

A recipe key (``edgecnn.recipe``) and a command-line-only option (``edgecnn.cli.options``) both
describe their range with a ``NumberRange`` and refuse NaN, infinities and out-of-range values
with one line that names the setting, the range and the value. TF-free.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from edgecnn.errors import RecipeError


@dataclass(frozen=True)
class NumberRange:
    """``low``/``high``: bounds (None: unbounded); ``*_open``: the bound itself is excluded; ``hint``: how to fix."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    integer: bool = False
    hint: str = ""

    def describe(self) -> str:
        """``a finite number > 0``, ``a whole number between 8 and 1024``, ``a finite number in [0, 1)``."""
        kind = "a whole number" if self.integer else "a finite number"
        low, high = self.low, self.high
        if low is not None and high is not None:
            if not (self.low_open or self.high_open):
                return f"{kind} between {low:g} and {high:g}"
            return f"{kind} in {'(' if self.low_open else '['}{low:g}, {high:g}{')' if self.high_open else ']'}"
        if low is not None:
            return f"{kind} {'>' if self.low_open else '>='} {low:g}"
        if high is not None:
            return f"{kind} {'<' if self.high_open else '<='} {high:g}"
        return kind

    def contains(self, value) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return False
        if self.integer and not isinstance(value, int):
            return False
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return self.high is None or not (value > self.high or (self.high_open and value == self.high))

    def message(self, name: str, value) -> str:
        hint = f"; {self.hint}" if self.hint else ""
        return f"{name} must be {self.describe()}, got {_show(value)}{hint}"


def check_number(name: str, value, limits: NumberRange, source: str = "") -> None:
    """Raise a one-line ``RecipeError`` (exit code 2) unless ``value`` is finite and inside ``limits``."""
    if not limits.contains(value):
        prefix = f"{source}: " if source else ""
        raise RecipeError(prefix + limits.message(name, value))


def _show(value) -> str:
    return f"{value:g}" if isinstance(value, float) else repr(value)
