"""Pseudo-label quality against full masks: precision first, since a wrong label costs more than a missing one.

Metrics of a pseudo-label ``p`` (0 = background, 1..K = classes, ``ignore_value`` = unlabelled) against a
full mask ``t`` (0 = background, > 0 = foreground):
- fg_precision = |p fg and t fg| / |p fg|   (p fg: 0 < p != ignore_value; t fg: t > 0, any class)
- fg_recall    = |p fg and t fg| / |t fg|
- bg_precision = |p == 0 and t == 0| / |p == 0|
- labelled_share = |p != ignore_value| / all voxels
A ratio with an empty denominator (no pseudo-foreground, no true foreground, ...) is NaN: undefined, not
perfect, and left out of means (``mean_quality`` uses nanmean and reports how many cases each mean covers).
With K > 1 classes, ``per_class[c]`` holds the class-exact precision and recall (p == c against t == c).
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

METRICS = ("fg_precision", "fg_recall", "bg_precision", "labelled_share")


def _ratio(num: int, den: int) -> float:
    return num / den if den else math.nan


def pseudo_label_quality(pseudo: np.ndarray, truth: np.ndarray, ignore_value: int) -> dict:
    """Quality of the pseudo-label ``pseudo`` against the full mask ``truth`` (same shape, integer labels).

    Returns {fg_precision, fg_recall, bg_precision, labelled_share} as floats in [0, 1] or NaN, plus
    ``per_class`` {c: {precision, recall}} for c in 1..ignore_value-1 when there are several classes.
    """
    pseudo, truth = np.asarray(pseudo), np.asarray(truth)
    if pseudo.shape != truth.shape:
        raise ValueError(f"pseudo-label shape {pseudo.shape} != mask shape {truth.shape}")
    if ignore_value < 2:
        raise ValueError(f"ignore_value must be >= 2 (0 background, 1.. classes), got {ignore_value}")
    if pseudo.size and (pseudo.min() < 0 or pseudo.max() > ignore_value):
        raise ValueError(f"pseudo-label values must lie in 0..{ignore_value}, got {pseudo.min()}..{pseudo.max()}")
    if truth.size and truth.min() < 0:
        raise ValueError(f"mask values must be >= 0, got {truth.min()}")
    p_fg = (pseudo > 0) & (pseudo != ignore_value)
    p_bg = pseudo == 0
    t_fg = truth > 0
    result: dict = {
        "fg_precision": _ratio(int(np.count_nonzero(p_fg & t_fg)), int(np.count_nonzero(p_fg))),
        "fg_recall": _ratio(int(np.count_nonzero(p_fg & t_fg)), int(np.count_nonzero(t_fg))),
        "bg_precision": _ratio(int(np.count_nonzero(p_bg & ~t_fg)), int(np.count_nonzero(p_bg))),
        "labelled_share": _ratio(int(np.count_nonzero(pseudo != ignore_value)), pseudo.size),
    }
    if ignore_value > 2:
        result["per_class"] = {}
        for c in range(1, ignore_value):
            p_c, t_c = pseudo == c, truth == c
            hits = int(np.count_nonzero(p_c & t_c))
            result["per_class"][c] = {"precision": _ratio(hits, int(np.count_nonzero(p_c))),
                                      "recall": _ratio(hits, int(np.count_nonzero(t_c)))}
    return result


def _columns(rows: Sequence[Mapping]) -> list[tuple[str, tuple]]:
    """(header, key path) of every metric in ``rows``: the four main ones, then per-class ones."""
    cols = [(m, (m,)) for m in METRICS]
    classes = sorted({c for r in rows for c in r.get("per_class", {})}, key=int)
    cols += [(f"c{c}_{k[:4]}", ("per_class", c, k)) for c in classes for k in ("precision", "recall")]
    return cols


def _get(row: Mapping, keys: tuple) -> float:
    for k in keys:
        if not isinstance(row, Mapping) or k not in row:
            return math.nan
        row = row[k]
    return float(row)  # type: ignore[arg-type]


def mean_quality(rows: Sequence[Mapping]) -> dict[str, dict[str, float]]:
    """{metric: {mean, min, n}} over the cases that define it (NaN entries left out)."""
    out = {}
    for header, keys in _columns(rows):
        values = np.array([_get(r, keys) for r in rows], float)
        values = values[~np.isnan(values)]
        out[header] = {"mean": float(values.mean()) if values.size else math.nan,
                       "min": float(values.min()) if values.size else math.nan, "n": int(values.size)}
    return out


def _cell(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.4f}"


def format_quality_table(rows: Sequence[Mapping]) -> str:
    """Readable table: one line per case (``row["case"]``), then the mean and the minimum of each metric."""
    cols = _columns(rows)
    names = [str(r.get("case", i)) for i, r in enumerate(rows, start=1)]
    width = max([4, *map(len, names)])
    widths = [max(6, len(h)) for h, _ in cols]
    lines = ["case".ljust(width) + "  " + "  ".join(h.rjust(w) for (h, _), w in zip(cols, widths))]
    summary = mean_quality(rows)
    table = [(name, [_get(row, keys) for _, keys in cols]) for name, row in zip(names, rows)]
    table += [(stat, [summary[h][stat] for h, _ in cols]) for stat in ("mean", "min")]
    for name, values in table:
        lines.append(name.ljust(width) + "  " + "  ".join(_cell(v).rjust(w) for v, w in zip(values, widths)))
    return "\n".join(lines)
