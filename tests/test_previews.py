"""paseg_convert --preview: one picture of the pseudo-label per training case and an overview, inside the dataset."""
from __future__ import annotations

from pathlib import Path

import matplotlib.image
import numpy as np

from dataset_conversion.paseg_convert import main
from dataset_conversion.previews import BACKGROUND, CLASS_COLOURS, IGNORE
from test_convert import write_inputs


def _png_size(path: Path) -> tuple[int, int]:
    """(width, height) from the PNG header; asserts the file is a PNG."""
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _pixels_of(picture: np.ndarray, colour: tuple[float, float, float]) -> int:
    """How many pixels show ``colour`` (RGB 0..1) blended at any strength over grey: their channels differ from each
    other as the colour's do."""
    shift = picture[..., :3] - picture[..., :3].mean(axis=-1, keepdims=True)
    target = np.array(colour) - np.mean(colour)
    direction = target / np.linalg.norm(target)
    along = shift @ direction
    return int(((along > 0.08) & (np.linalg.norm(shift - along[..., None] * direction, axis=-1) < 0.12)).sum())


def test_preview_pictures_every_training_case(nnunet_env, tmp_path, capsys):
    dirs = write_inputs(tmp_path / "in", n=3, two_classes=True)
    main(["-i", str(dirs["images"]), "-a", str(dirs["clicks"]), "-d", "21", "-n", "Preview", "--classes", "bright",
          "dim", "-np", "2", "--device", "cpu", "--preview"])
    dataset = nnunet_env["nnUNet_raw"] / "Dataset021_Preview"
    assert [p.name for p in nnunet_env["nnUNet_raw"].iterdir()] == ["Dataset021_Preview"]
    previews = dataset / "previews"
    assert sorted(p.name for p in previews.iterdir()) == ["case0.png", "case1.png", "case2.png", "overview.png"]
    for case in ("case0", "case1", "case2"):
        assert _png_size(previews / f"{case}.png") == (900, 670)  # header 0.7 in + 2 objects x 3 in, at 100 dpi
        panels = matplotlib.image.imread(previews / f"{case}.png")[70:]  # below the header and its colour legend
        for colour in (BACKGROUND, IGNORE, CLASS_COLOURS[0], CLASS_COLOURS[1]):
            # The label overlay, not only the clicks' markers (a foreground star covers about 100 pixels).
            assert _pixels_of(panels, colour) > 1000, (case, colour)
    # 3 tiles of 900 x 370 (header and first row): one column is about as wide as three rows are high.
    assert _png_size(previews / "overview.png") == (900, 3 * 370)
    overview = matplotlib.image.imread(previews / "overview.png")
    first = matplotlib.image.imread(previews / "case1.png")[:370, :, :3]
    assert np.abs(overview[370:740, :, :3] - first).max() < 2 / 255  # case1's tile, unscaled
    assert f"{previews / 'overview.png'}" in capsys.readouterr().out


def test_no_previews_by_default(nnunet_env, tmp_path):
    dirs = write_inputs(tmp_path / "in", n=1, gt=False)
    main(["-i", str(dirs["images"]), "-a", str(dirs["clicks"]), "-d", "22", "-n", "Plain", "--device", "cpu"])
    assert not (nnunet_env["nnUNet_raw"] / "Dataset022_Plain" / "previews").exists()
