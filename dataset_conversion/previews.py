"""Pictures of the pseudo-labels, to look at before training (``paseg_convert --preview``).

``DATASET/previews/CASE.png`` per training case: a header (case, share of background / ignore / foreground voxels,
colour legend) and, per object, one row of three orthogonal slices through its foreground click (constant z, y, x
voxel index, spacing-true aspect; z upwards on the y and x slices): the image's first channel in grey (1st-99th
percentile), the pseudo-label over it (background blue, ignore yellow, classes red, green, ...), the object's
foreground click (white star), its background clicks (crosses, projected onto the slice along the slice's axis) and the
box they span (dashed). ``DATASET/previews/overview.png``: the header and first row of every case on one sheet.
Drawn with matplotlib's Agg canvas (no display, no pyplot state), so it runs in worker processes.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import matplotlib.image
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle

from point_tools.clicks import ObjectClicks

PREVIEWS = "previews"
OVERVIEW = "overview.png"
DPI = 100
# Layout in inches, fixed so that every picture, and every overview tile, has a known size: a header, then per object
# a row of three panels (a title above each, the axis names below).
WIDTH_IN, HEADER_IN, ROW_IN = 9.0, 0.7, 3.0
LEFT_IN, GAP_IN, PANEL_W_IN, PANEL_H_IN, TITLE_IN = 0.35, 0.15, 2.75, 2.45, 0.25
BACKGROUND, IGNORE = (0.15, 0.35, 1.0), (1.0, 0.85, 0.0)
CLASS_COLOURS = [(0.9, 0.1, 0.1), (0.1, 0.85, 0.2), (0.85, 0.2, 0.9), (1.0, 0.5, 0.0), (0.0, 0.85, 0.85)]
BACKGROUND_ALPHA, IGNORE_ALPHA, CLASS_ALPHA = 0.25, 0.3, 0.55
OVERVIEW_MAX_SIDE = 6000  # pixels; tiles are shrunk by a whole factor until the sheet fits


def class_colour(label: int) -> tuple[float, float, float]:
    """RGB of class ``label`` (1..K), the five colours in turn."""
    return CLASS_COLOURS[(label - 1) % len(CLASS_COLOURS)]


def case_picture_size(num_objects: int) -> tuple[int, int]:
    """(width, height) in pixels of a case's picture."""
    return round(WIDTH_IN * DPI), round((HEADER_IN + ROW_IN * num_objects) * DPI)


def _label_colours(num_classes: int) -> np.ndarray:
    """RGBA per label value 0..num_classes + 1 (background, classes, ignore)."""
    colours = [(*BACKGROUND, BACKGROUND_ALPHA)] + [(*class_colour(c), CLASS_ALPHA) for c in range(1, num_classes + 1)]
    return np.array(colours + [(*IGNORE, IGNORE_ALPHA)], np.float32)


# (array axis held constant, in-plane axes as (rows, columns), origin of the rows): z upwards where it is shown.
_VIEWS = ((0, (1, 2), "upper"), (1, (0, 2), "lower"), (2, (0, 1), "lower"))


def _draw_view(ax, image: np.ndarray, label: np.ndarray, colours: np.ndarray, spacing: Sequence[float],
               obj: ObjectClicks, axis: int, plane: tuple[int, int], origin: str, window: tuple[float, float],
               title: str) -> None:
    rows, cols = plane
    index = obj.foreground[axis]
    cut = [slice(None)] * 3
    cut[axis] = index
    aspect = spacing[rows] / spacing[cols]
    ax.imshow(image[tuple(cut)], cmap="gray", vmin=window[0], vmax=window[1], origin=origin, aspect=aspect,
              interpolation="nearest")
    ax.imshow(colours[label[tuple(cut)]], origin=origin, aspect=aspect, interpolation="nearest")
    low, high = obj.box()
    ax.add_patch(Rectangle((low[cols] - 0.5, low[rows] - 0.5), high[cols] - low[cols] + 1, high[rows] - low[rows] + 1,
                           fill=False, edgecolor="white", linestyle="--", linewidth=0.8))
    background = np.array(obj.background)
    ax.scatter(background[:, cols], background[:, rows], marker="x", s=40, c="white", linewidths=1.5)
    ax.scatter([obj.foreground[cols]], [obj.foreground[rows]], marker="*", s=180, c="white", edgecolors="black",
               linewidths=0.8)
    ax.set_title(f"{title}{'zyx'[axis]} = {index}", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("zyx"[cols], fontsize=8, labelpad=1)
    ax.set_ylabel("zyx"[rows], fontsize=8, labelpad=1)


def write_case_preview(dataset: Path, case: str, image: np.ndarray, spacing: Sequence[float],
                       objects: Sequence[ObjectClicks], label: np.ndarray, num_classes: int) -> Path:
    """Write ``dataset/previews/CASE.png`` (module docstring) and return its path.

    image: (C, Z, Y, X); spacing: (z, y, x) mm; label: the pseudo-label (Z, Y, X), values 0..num_classes + 1.
    """
    channel = image[0]
    window = tuple(np.percentile(channel, [1, 99])) if channel.size else (0.0, 1.0)
    colours = _label_colours(num_classes)
    width, height = case_picture_size(len(objects))
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    header = HEADER_IN / (height / DPI)
    shares = np.bincount(label.ravel(), minlength=num_classes + 2) / label.size
    fig.text(0.01, 1 - 0.3 * header, f"{case}: {len(objects)} object(s); background {shares[0]:.1%}, ignore "
             f"{shares[-1]:.1%}, foreground {shares[1:-1].sum():.1%} of the voxels", fontsize=11, weight="bold",
             va="center")
    legend = [Patch(color=BACKGROUND, label="background"), Patch(color=IGNORE, label="ignore (unlabelled)")]
    legend += [Patch(color=class_colour(c), label=f"class {c}") for c in range(1, num_classes + 1)]
    fig.legend(handles=legend, loc="center left", bbox_to_anchor=(0.0, 1 - 0.72 * header), ncol=len(legend),
               fontsize=8, frameon=False)
    for row, obj in enumerate(objects):
        bottom = height / DPI - HEADER_IN - row * ROW_IN - TITLE_IN - PANEL_H_IN
        for col, (axis, plane, origin) in enumerate(_VIEWS):
            ax = fig.add_axes(((LEFT_IN + col * (PANEL_W_IN + GAP_IN)) / WIDTH_IN, bottom / (height / DPI),
                               PANEL_W_IN / WIDTH_IN, PANEL_H_IN / (height / DPI)))
            title = f"object {row + 1} (class {obj.label}): " if col == 0 else ""
            _draw_view(ax, channel, label, colours, spacing, obj, axis, plane, origin, window, title)
    path = dataset / PREVIEWS / f"{case}.png"
    path.parent.mkdir(exist_ok=True)
    fig.savefig(path, dpi=DPI)
    return path


def _shrink(picture: np.ndarray, factor: int) -> np.ndarray:
    """``picture`` (H, W, C) reduced by a whole ``factor`` by averaging blocks (the edge remainder dropped)."""
    if factor == 1:
        return picture
    h, w = picture.shape[0] // factor * factor, picture.shape[1] // factor * factor
    return picture[:h, :w].reshape(h // factor, factor, w // factor, factor, -1).mean(axis=(1, 3))


def write_overview(dataset: Path, cases: Sequence[str]) -> Path:
    """Tile the header and first object row of each case's picture (``write_case_preview``) into
    ``dataset/previews/overview.png``, in the order of ``cases``, about as wide as high; return its path."""
    folder = dataset / PREVIEWS
    tile_w, tile_h = case_picture_size(1)
    columns = max(1, round(math.sqrt(len(cases) * tile_h / tile_w)))
    rows = math.ceil(len(cases) / columns)
    factor = max(1, math.ceil(max(columns * tile_w, rows * tile_h) / OVERVIEW_MAX_SIDE))
    tile_w, tile_h = tile_w // factor, tile_h // factor
    sheet = np.full((rows * tile_h, columns * tile_w, 3), 255, np.uint8)
    for n, case in enumerate(cases):
        picture = matplotlib.image.imread(folder / f"{case}.png")[: case_picture_size(1)[1], :, :3]  # floats 0..1
        r, c = divmod(n, columns)
        tile = np.round(_shrink(picture, factor)[:tile_h, :tile_w] * 255).astype(np.uint8)
        sheet[r * tile_h:(r + 1) * tile_h, c * tile_w:(c + 1) * tile_w] = tile
    path = folder / OVERVIEW
    matplotlib.image.imsave(path, sheet)
    return path
