"""The errors of a conversion, and how their messages are built.

``DatasetInputError``: the inputs cannot make a dataset (every problem listed, each with its case and file);
``ConversionError``: something outside the inputs failed (a write, a worker process). Either way nothing was
written. ``dataset_conversion.cli.run`` turns both into one line on stderr and exit status 1.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator, Sequence

from point_tools.image_files import itk_reason


class DatasetInputError(ValueError):
    """Inputs that cannot make a dataset; the message lists every problem with its case and file."""


class ConversionError(RuntimeError):
    """The conversion failed for a reason outside the inputs (a file that could not be written, a worker process
    that died); the message says what failed and where. Nothing was written."""


def problem_list(problems: Sequence[str]) -> str:
    """The message of a DatasetInputError that lists ``problems``."""
    return f"{len(problems)} problem(s) found, nothing was written:\n  " + "\n  ".join(problems)


@contextlib.contextmanager
def writing(path: Path, action: str = "write") -> Iterator[None]:
    """Turn a failure to write ``path`` (a full disk, no permission; OSError, or ITK's RuntimeError) into a
    ConversionError "could not ACTION PATH: reason"."""
    try:
        yield
    except OSError as e:
        raise ConversionError(f"could not {action} {path}: {e.strerror or e}") from None
    except RuntimeError as e:
        raise ConversionError(f"could not {action} {path}: {itk_reason(e)}") from None
