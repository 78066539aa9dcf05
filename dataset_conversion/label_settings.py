"""The settings of a conversion, each checked once, where it enters.

Method, lambda, threshold and device are checked when a ``LabelSettings`` is made (the converters make it first,
before they look at any file), the number of worker processes by ``check_workers`` when ``build_dataset`` starts;
below that nothing checks them again (``point_tools.pseudo_labels`` and its methods take them as given). Every
check is the one function of its setting (``point_tools.pseudo_labels.check_method``,
``point_tools.geodesic.check_lambda``, ``check_threshold``, ``resolve_device``, ``point_tools.options.check_count``),
and a ``SettingError`` lists what each found, so that ``dataset_conversion.cli.run`` can name the command-line
option (``argument --lambda: ...``).

The geodesic weight is called lambda everywhere (``--lambda``, dataset.json, messages) except as a Python name,
where the keyword ``lambda`` cannot be used: there it is ``lamb``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, TypedDict

from point_tools.geodesic import DEFAULT_LAMBDA, DEFAULT_THRESHOLD, check_lambda, check_threshold, resolve_device
from point_tools.options import check_count
from point_tools.pseudo_labels import DEFAULT_METHOD, check_method
from point_tools.refine import DEFAULT_MAX_SHARE

from dataset_conversion.errors import DatasetInputError, problem_list


class SettingError(DatasetInputError):
    """Settings that cannot work. ``problems``: {setting: what is wrong}, the settings named ``method``,
    ``lambda``, ``threshold``, ``device`` and ``num_processes``."""

    def __init__(self, problems: Mapping[str, str]):
        super().__init__(problem_list([f"{setting}: {why}" for setting, why in problems.items()]))
        self.problems = dict(problems)


@dataclass(frozen=True)
class LabelSettings:
    """How pseudo-labels are made and full labels read; SettingError (every bad setting listed) when made with a
    method, lambda, threshold or device that cannot work.

    num_classes: K. object_classes: object index -> class for click files that do not say (see
    ``point_tools.click_formats.read_clicks``). method (``point_tools.pseudo_labels.METHODS``), lamb (lambda),
    threshold, device: passed to ``point_tools.pseudo_labels.pseudo_label``; device None is CUDA when available.
    truth_values: raw value -> class for full labels (e.g. BraTS {0: 0, 1: 1, 2: 1, 4: 1}); a value it does not
    list is an error. None: full labels already hold 0..K.
    """

    num_classes: int = 1
    object_classes: Mapping[int, int] | None = None
    lamb: float = DEFAULT_LAMBDA
    threshold: float = DEFAULT_THRESHOLD
    device: str | None = None
    truth_values: Mapping[int, int] | None = None
    method: str = DEFAULT_METHOD

    def __post_init__(self) -> None:
        # Worker processes receive a pickled copy, which is not made through __init__: the check runs once.
        checks = [("method", check_method, self.method), ("lambda", check_lambda, self.lamb),
                  ("threshold", check_threshold, self.threshold)]
        if self.device is not None:  # None asks no driver, so that a conversion on the CPU can fork its workers
            checks.append(("device", resolve_device, self.device))
        problems = {}
        for setting, check, value in checks:
            try:
                check(value)
            except ValueError as e:
                problems[setting] = str(e)
        grows_core = self.method in ("refined", "extremes")
        if grows_core and "threshold" not in problems and self.threshold > DEFAULT_MAX_SHARE:
            # refine grows the core only where the geodesic share is below DEFAULT_MAX_SHARE: a core threshold
            # above it would fail on every case, one by one.
            problems["threshold"] = (f"with --method {self.method}, at most {DEFAULT_MAX_SHARE} (the share up to which "
                                     f"it grows the geodesic core), got {self.threshold}")
        if problems:
            raise SettingError(problems)


def check_workers(num_processes: int) -> None:
    """SettingError unless ``num_processes`` is a count of worker processes (an integer >= 1)."""
    try:
        check_count(num_processes)
    except ValueError as e:
        raise SettingError({"num_processes": str(e)}) from None


class ConversionOptions(TypedDict, total=False):
    """The options that every converter takes as keywords, as the command lines' shared options give them
    (``dataset_conversion.cli.conversion_options``): those of ``LabelSettings`` (method, lamb, threshold, device)
    and of ``raw_dataset.build_dataset`` (num_processes, overwrite, allow_empty_foreground). A missing key takes
    their default."""

    method: str
    lamb: float
    threshold: float
    device: str | None
    num_processes: int
    overwrite: bool
    allow_empty_foreground: bool


LABEL_OPTIONS = ("method", "lamb", "threshold", "device")
