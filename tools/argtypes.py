"""argparse ``type=`` helpers that range-check numbers, and cross-argument checks, for every sub-command.

An out-of-range number is refused by the parser itself (``error: argument --k: must be an integer >= 1, got 0``,
exit 2) instead of being used: ``--k 0`` reported chance, ``--every -2`` acted like 2, ``--stride -1`` gave no
clips, ``--fps 0`` was written into every row.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def _number(text: str, kind: type) -> int | float:
    try:
        value = kind(text)
    except ValueError:
        expected = "an integer" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def int_at_least(minimum: int) -> Callable[[str], int]:
    """``type=`` for an integer >= ``minimum``."""

    def parse(text: str) -> int:
        value = _number(text, int)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {text}")
        return value

    parse.__name__ = f"integer >= {minimum}"  # argparse names the type in its messages
    return parse


def float_in(low: float | None = None, high: float | None = None, *, low_open: bool = False,
             high_open: bool = False) -> Callable[[str], float]:
    """``type=`` for a finite float in a range; ``low_open`` / ``high_open`` exclude the bound itself."""
    lo = "" if low is None else ("(" if low_open else "[") + f"{low:g}"
    hi = "" if high is None else f"{high:g}" + (")" if high_open else "]")
    described = f"in {lo or '(-inf'}, {hi or 'inf)'}"

    def parse(text: str) -> float:
        value = float(_number(text, float))
        if low is not None and (value < low or (low_open and value == low)):
            raise argparse.ArgumentTypeError(f"must be a number {described}, got {text}")
        if high is not None and (value > high or (high_open and value == high)):
            raise argparse.ArgumentTypeError(f"must be a number {described}, got {text}")
        return value

    parse.__name__ = f"number {described}"
    return parse


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)
positive_float = float_in(0.0, low_open=True)
non_negative_float = float_in(0.0)
probability = float_in(0.0, 1.0)
top_p = float_in(0.0, 1.0, low_open=True)  # nucleus sampling: 0 would keep no token
positive_int.__name__, non_negative_int.__name__ = "positive integer", "non-negative integer"
positive_float.__name__, non_negative_float.__name__ = "positive number", "non-negative number"
probability.__name__ = "probability in [0, 1]"


def check_order(parser: argparse.ArgumentParser, args: argparse.Namespace, *pairs: tuple[str, str]) -> None:
    """Refuse (parser.error: usage and exit 2) when a ``low`` option exceeds its ``high`` one, e.g.
    ``("min_frames", "max_frames")``; options left unset (None) are not compared."""
    for low, high in pairs:
        a, b = getattr(args, low, None), getattr(args, high, None)
        if a is not None and b is not None and a > b:
            parser.error(f"--{low.replace('_', '-')} {a} is larger than --{high.replace('_', '-')} {b}")


def check_order_or_raise(args: argparse.Namespace, *pairs: tuple[str, str]) -> None:
    """:func:`check_order` for a sub-command's ``main`` (no parser at hand): a ValueError the CLI reports as an
    input error (exit 2)."""
    for low, high in pairs:
        a, b = getattr(args, low, None), getattr(args, high, None)
        if a is not None and b is not None and a > b:
            from egoforge.data.errors import InputError

            raise InputError(None, f"--{low.replace('_', '-')} {a} is larger than --{high.replace('_', '-')} {b}",
                             fix="swap or fix the two values")
