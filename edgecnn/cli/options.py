"""Click option types for command-line-only numbers (gates, --duration, --threshold ...).

``Finite(low, high)`` refuses NaN, infinities and out-of-range values while the command line is
parsed, with the same one line as a recipe key (``edgecnn.numbers``): "--duration must be a finite
number > 0, got nan", exit code 2, no usage block. click's FloatRange lets NaN through (every
comparison with NaN is false), which is why this type exists.
"""

from __future__ import annotations

import click

from edgecnn.numbers import NumberRange


class OptionError(click.ClickException):
    """A one-line ``Error: ...`` with exit code 2 (a ClickException shows no usage block)."""

    exit_code = 2


class Finite(click.ParamType):
    """A finite float (or with ``integer=True`` a whole number) inside ``[low, high]`` (open ends optional)."""

    def __init__(self, low: float | None = None, high: float | None = None, *, low_open: bool = False,
                 high_open: bool = False, integer: bool = False, hint: str = ""):
        self.limits = NumberRange(low, high, low_open, high_open, integer, hint)
        self.name = "integer" if integer else "float"

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = value
        else:
            number = _parse(str(value), self.limits.integer)
        name = param.opts[0] if param is not None and param.opts else "value"
        if number is None or not self.limits.contains(number):
            raise OptionError(self.limits.message(name, number if number is not None else str(value)))
        return number

    def __repr__(self) -> str:
        return f"Finite({self.limits.describe()})"


def _parse(text: str, integer: bool):
    try:
        return int(text) if integer else float(text)
    except ValueError:
        return None
