"""The 7-click simulation protocol (point_tools.simulate) and its CLI."""
from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from point_tools.click_formats import FORMAT_CHOICES, click_format, read_clicks
from point_tools.clicks import validate_objects
from point_tools.io_volume import write_annotation_volume
from point_tools.simulate import simulate_clicks
from tests.conftest import run_cli


def sphere(shape=(24, 30, 28), centre=(11, 14, 13), radius=5.0, spacing=(1.0, 1.0, 1.0)) -> np.ndarray:
    grid = np.meshgrid(*[np.arange(n) * s for n, s in zip(shape, spacing)], indexing="ij")
    dist2 = sum((g - c * s) ** 2 for g, c, s in zip(grid, centre, spacing))
    return (dist2 <= radius ** 2).astype(np.uint8)


def test_deepest_point_is_the_centre_and_background_one_voxel_beyond_each_extreme():
    mask = sphere()
    (obj,) = simulate_clicks(mask, (1.0, 1.0, 1.0))
    assert obj.foreground == (11, 14, 13) and obj.label == 1
    assert obj.background == ((5, 14, 13), (17, 14, 13), (11, 8, 13), (11, 20, 13), (11, 14, 7), (11, 14, 19))
    for point in obj.background:
        assert mask[point] == 0
    validate_objects([obj], mask.shape, "sphere")


def test_margin_in_mm_follows_the_spacing():
    spacing = (2.0, 1.0, 1.0)
    mask = sphere(spacing=spacing, radius=6.0)  # extremes: z 8..14, y 8..20, x 7..19
    (obj,) = simulate_clicks(mask, spacing, margin_mm=4.0)
    z, y, x = np.nonzero(mask)
    (z0, z1), (y0, y1), (x0, x1) = [(v.min(), v.max()) for v in (z, y, x)]
    assert [p[0] for p in obj.background[:2]] == [z0 - 2, z1 + 2]  # 4 mm = 2 voxels of 2 mm
    assert [p[1] for p in obj.background[2:4]] == [y0 - 4, y1 + 4]
    assert [p[2] for p in obj.background[4:]] == [x0 - 4, x1 + 4]


def test_deepest_point_is_measured_in_mm():
    # A: 9x9x9 voxels, B: 3x15x15 voxels. Isotropic, A's centre is deeper (5 vs 2 voxels). With 4 mm
    # slices, A's centre is 5 mm from its side walls and B's 8 mm from every wall.
    mask = np.zeros((12, 20, 40), np.uint8)
    mask[1:10, 2:11, 2:11] = 1
    mask[4:7, 2:17, 20:35] = 1
    (iso,) = simulate_clicks(mask, (1.0, 1.0, 1.0), per="class")
    (aniso,) = simulate_clicks(mask, (4.0, 1.0, 1.0), per="class")
    assert iso.foreground == (5, 6, 6)
    assert aniso.foreground == (5, 9, 27)


def test_random_clicks_are_reproducible_and_inside():
    mask = sphere()
    first = simulate_clicks(mask, (1.0, 1.0, 1.0), fg_mode="random", seed=3)
    again = simulate_clicks(mask, (1.0, 1.0, 1.0), fg_mode="random", seed=3)
    others = {simulate_clicks(mask, (1.0, 1.0, 1.0), fg_mode="random", seed=s)[0].foreground for s in range(8)}
    assert first == again
    assert len(others) > 1
    assert all(mask[p] for p in others)


@pytest.mark.parametrize("seed", range(6))
def test_jitter_is_bounded_and_keeps_clicks_valid(seed):
    spacing, jitter = (2.0, 1.0, 0.5), 3.0
    mask = sphere(shape=(16, 30, 60), centre=(8, 15, 30), radius=7.0, spacing=spacing)
    (exact,) = simulate_clicks(mask, spacing)
    (noisy,) = simulate_clicks(mask, spacing, jitter_mm=jitter, seed=seed)
    assert mask[noisy.foreground] == 1
    assert np.all(np.abs(np.subtract(noisy.foreground, exact.foreground)) * spacing <= jitter)
    for n, (a, b) in enumerate(zip(exact.background, noisy.background)):
        axis, side = divmod(n, 2)
        assert mask[b] == 0
        shift = (np.subtract(b, a) * spacing)
        assert np.all(np.abs(shift) <= jitter + np.asarray(spacing) / 2)  # rounding to the grid
        assert shift[axis] * (1 if side else -1) >= 0  # never inwards along its own axis
    validate_objects([noisy], mask.shape, "jittered")


def test_clicks_stay_in_the_image_when_the_object_touches_its_border():
    mask = np.zeros((10, 12, 14), np.uint8)
    mask[0:4, 3:9, 10:14] = 1
    (obj,) = simulate_clicks(mask, (1.0, 1.0, 1.0))
    assert obj.background[0][0] == 0 and obj.background[5][2] == 13
    validate_objects([obj], mask.shape, "border")


def test_components_classes_and_min_size():
    mask = np.zeros((20, 20, 40), np.uint8)
    mask[2:8, 2:8, 2:8] = 1
    mask[2:8, 2:8, 20:26] = 1
    mask[12:18, 12:18, 12:18] = 2
    mask[15, 2, 35] = 2  # one-voxel speck
    per_component = simulate_clicks(mask, (1.0, 1.0, 1.0))
    assert [o.label for o in per_component] == [1, 1, 2]
    assert len(simulate_clicks(mask, (1.0, 1.0, 1.0), min_size_voxels=1)) == 4
    per_class = simulate_clicks(mask, (1.0, 1.0, 1.0), per="class")
    assert [o.label for o in per_class] == [1, 2]
    low, high = per_class[0].box()
    assert low[2] == 1 and high[2] == 26  # one box around both class-1 parts
    only_two = simulate_clicks(mask, (1.0, 1.0, 1.0), classes=[2])
    assert [o.label for o in only_two] == [2]
    assert simulate_clicks(np.zeros((5, 5, 5), np.uint8), (1.0, 1.0, 1.0)) == []


def test_bad_arguments():
    with pytest.raises(ValueError, match="per"):
        simulate_clicks(sphere(), (1, 1, 1), per="blob")
    with pytest.raises(ValueError, match="fg_mode"):
        simulate_clicks(sphere(), (1, 1, 1), fg_mode="centre")
    with pytest.raises(ValueError, match="3D"):
        simulate_clicks(np.zeros((4, 4)), (1, 1, 1))


@pytest.mark.usefixtures("this_tree")
@pytest.mark.parametrize("fmt", FORMAT_CHOICES)  # every registered format, and the former names
def test_cli_writes_clicks_that_read_back(tmp_path, fmt):
    masks = tmp_path / "masks"
    masks.mkdir()
    expected = {}
    for n, centre in enumerate([(11, 14, 13), (12, 15, 12)]):
        image = sitk.GetImageFromArray(sphere(centre=centre))
        image.SetSpacing((0.8, 0.9, 1.5))
        image.SetOrigin((10.0, -5.0, 3.0))
        sitk.WriteImage(image, str(masks / f"case{n}.nii.gz"))
        expected[f"case{n}"] = (image, simulate_clicks(sphere(centre=centre), (1.5, 0.9, 0.8)))
    out = tmp_path / "clicks"
    run_cli("paseg_simulate_points", "-i", masks, "-o", out, "--format", fmt, "-np", "2")
    for case, (reference, objects) in expected.items():
        read = read_clicks(out / click_format(fmt).file_name(case), reference, case=case)
        # an annotation volume keeps no order among an object's background clicks
        assert [(o.foreground, sorted(o.background), o.label) for o in read] == \
            [(o.foreground, sorted(o.background), o.label) for o in objects]


def test_adjacent_objects_never_share_a_click_voxel(tmp_path):
    """Two structures one voxel apart: the first's upper and the second's lower background click would fall on the
    same voxel, which the annotation volume cannot hold. The second moves to the nearest free voxel, still outside
    its object and not inwards."""
    mask = np.zeros((24, 16, 16), np.uint8)
    mask[5:10, 5:11, 5:11] = 1
    mask[11:16, 5:11, 5:11] = 2
    first, second = simulate_clicks(mask, spacing=(1.0, 1.0, 1.0))
    assert first.background[1] == (10, 7, 7)  # the first object's clicks are those of the protocol
    moved = second.background[0]
    assert moved != (10, 7, 7) and moved[0] <= 10 and mask[moved] != 2
    clicks = [c for obj in (first, second) for c in (obj.foreground, *obj.background)]
    assert len(set(clicks)) == len(clicks)
    validate_objects([first, second], mask.shape, "adjacent")
    image = sitk.GetImageFromArray(mask.astype(np.float32))
    path = tmp_path / "case.nii.gz"
    write_annotation_volume([first, second], image, path)
    assert [(o.foreground, sorted(o.background)) for o in read_clicks(path, image)] == \
        [(o.foreground, sorted(o.background)) for o in (first, second)]
