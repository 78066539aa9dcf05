"""argparse types shared by the command-line tools: each checks its value while the command line is parsed, so a
bad option is argparse's one-line error (status 2) before any work."""
from __future__ import annotations

import argparse
from typing import Callable


def positive_int(text: str) -> int:
    """An integer >= 1 (e.g. a number of worker processes)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def checked_float(check: Callable[[float], float]) -> Callable[[str], float]:
    """A number that ``check`` accepts (its ValueError is the message)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        try:
            return check(value)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    return parse
