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


class ChannelValues(click.ParamType):
    """``--mean``/``--std``: 1 or 3 comma-separated finite numbers (one per channel); ``positive``: each > 0."""

    name = "numbers"

    def __init__(self, positive: bool = False):
        self.limits = NumberRange(0, low_open=True) if positive else NumberRange()

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        name = param.opts[0] if param is not None and param.opts else "value"
        numbers = [_parse(part, integer=False) for part in str(value).split(",")]
        if None in numbers:  # the wording run and export have always used for text that is no number
            raise OptionError(f"{name} {value!r} is not a number; give numbers separated by commas, "
                              f"e.g. {name} 127.5,127.5,127.5")
        if len(numbers) not in (1, 3) or not all(self.limits.contains(n) for n in numbers):
            raise OptionError(f"{name} must be 1 or 3 comma-separated numbers (one per channel), each "
                              f"{self.limits.describe()}, got {value!r}")
        return tuple(numbers)
