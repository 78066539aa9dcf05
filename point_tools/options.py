"""Counts and their argparse type, shared by the command-line tools: ``positive_int`` checks its value while the
command line is parsed, so a bad option is argparse's one-line error (status 2) before any work."""
from __future__ import annotations

import argparse


def check_count(value: int) -> int:
    """``value`` if it is an integer >= 1 (e.g. a number of worker processes); ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"must be an integer, got {value!r}")
    if value < 1:
        raise ValueError(f"must be at least 1, got {value}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (``check_count``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    try:
        return check_count(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
