"""Click I/O: world <-> voxel geometry, round trips of every format, and every kind of bad input."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from point_tools.click_formats import read_clicks
from point_tools.clicks import ClickError, ObjectClicks, validate_objects
from point_tools.geometry import index_to_world, world_to_index
from point_tools.io_csv import csv_cases, write_csv
from point_tools.io_slicer import write_slicer_markups
from point_tools.io_volume import classes_sidecar, write_annotation_volume
from tests.synthetic import ellipsoid_case

SHAPE = (20, 26, 23)  # (z, y, x)
SPACING = (0.7, 0.9, 2.5)  # (x, y, z) mm, as SimpleITK takes it
ORIGIN = (-12.3, 45.6, -78.9)


def _oblique_direction() -> tuple[float, ...]:
    """Rotation by 35 degrees about the axis (1, 2, 3): no axis of the image is aligned with the world."""
    axis = np.array([1.0, 2.0, 3.0]) / math.sqrt(14)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    a = math.radians(35)
    return tuple((np.eye(3) + math.sin(a) * k + (1 - math.cos(a)) * k @ k).ravel())


DIRECTION = _oblique_direction()


def protocol(fg: tuple[int, int, int], low: tuple[int, int, int], high: tuple[int, int, int],
             label: int = 1) -> ObjectClicks:
    """Seven clicks: ``fg`` and one background click at ``low``/``high`` along each axis through ``fg``."""
    bg = []
    for axis in range(3):
        for end in (low, high):
            p = list(fg)
            p[axis] = end[axis]
            bg.append(tuple(p))
    return ObjectClicks(fg, tuple(bg), label)


def canonical(objects: list[ObjectClicks]) -> list[tuple]:
    """Objects with background clicks in sorted order (the volume format does not keep their order)."""
    return [(o.foreground, tuple(sorted(o.background)), o.label) for o in objects]


@pytest.fixture
def reference() -> sitk.Image:
    image, _ = ellipsoid_case(shape=SHAPE, spacing=SPACING, origin=ORIGIN, direction=DIRECTION)
    return image


@pytest.fixture
def objects() -> list[ObjectClicks]:
    return [protocol((9, 12, 10), (3, 4, 2), (16, 21, 19), label=1),
            protocol((5, 5, 5), (2, 1, 1), (8, 9, 8), label=2)]


def _annotation(reference: sitk.Image, values: dict[tuple[int, int, int], float], dtype=np.uint8) -> sitk.Image:
    arr = np.zeros(SHAPE, dtype)
    for idx, v in values.items():
        arr[idx] = v
    out = sitk.GetImageFromArray(arr)
    out.CopyInformation(reference)
    return out


def _volume_values(objs: list[ObjectClicks]) -> dict[tuple[int, int, int], int]:
    values = {}
    for n, o in enumerate(objs, start=1):
        values.update({p: 2 * n - 1 for p in o.background})
        values[o.foreground] = 2 * n
    return values


# ----------------------------------------------------------------------------------------------- geometry

def test_index_to_world_matches_the_affine_formula(reference):
    d = np.array(DIRECTION).reshape(3, 3)
    for idx in [(0, 0, 0), (19, 25, 22), (7, 3, 11)]:
        expected = np.array(ORIGIN) + d @ (np.array(SPACING) * np.array(idx[::-1]))
        assert np.allclose(index_to_world(reference, idx), expected, atol=1e-9)


def test_world_to_index_inverts_and_rounds_to_the_nearest_voxel(reference):
    d = np.array(DIRECTION).reshape(3, 3)
    rng = np.random.default_rng(0)
    for _ in range(50):
        idx = tuple(int(rng.integers(0, s)) for s in SHAPE)
        assert world_to_index(reference, index_to_world(reference, idx)) == idx
        # up to 0.45 voxel off along each image axis still names the same voxel
        offset = d @ (np.array(SPACING) * rng.uniform(-0.45, 0.45, 3))
        assert world_to_index(reference, np.array(index_to_world(reference, idx)) + offset) == idx
    # 0.6 voxel along image x moves to the next voxel in numpy's last axis
    shifted = np.array(index_to_world(reference, (4, 4, 4))) + d[:, 0] * 0.6 * SPACING[0]
    assert world_to_index(reference, shifted) == (4, 4, 5)


# ----------------------------------------------------------------------------------------------- round trips

@pytest.mark.parametrize("ext", [".nii.gz", ".nrrd", ".mha"])
def test_annotation_volume_round_trip(tmp_path, reference, objects, ext):
    path = tmp_path / f"case{ext}"
    write_annotation_volume(objects, reference, path)
    written = sitk.ReadImage(str(path))
    arr = sitk.GetArrayFromImage(written)
    assert arr[objects[0].foreground] == 2 and arr[objects[1].foreground] == 4
    assert arr[objects[1].background[0]] == 3 and np.count_nonzero(arr) == 14
    assert json.loads(classes_sidecar(path).read_text()) == {"object_classes": {"1": 1, "2": 2}}
    # the reference itself was saved and re-read in the same format: geometry survives the header round trip
    ref_path = tmp_path / f"image{ext}"
    sitk.WriteImage(reference, str(ref_path))
    assert canonical(read_clicks(path, sitk.ReadImage(str(ref_path)))) == canonical(objects)


def test_binary_volume_writes_no_sidecar_and_removes_a_stale_one(tmp_path, reference, objects):
    path = tmp_path / "case.nii.gz"
    write_annotation_volume(objects, reference, path)
    assert classes_sidecar(path).exists()
    binary = [ObjectClicks(o.foreground, o.background) for o in objects]
    write_annotation_volume(binary, reference, path)
    assert not classes_sidecar(path).exists()
    assert [o.label for o in read_clicks(path, reference)] == [1, 1]


@pytest.mark.parametrize("system", ["LPS", "RAS"])
def test_slicer_round_trip(tmp_path, reference, objects, system):
    path = tmp_path / "case.mrk.json"
    write_slicer_markups(objects, reference, path, coordinate_system=system)
    doc = json.loads(path.read_text())
    assert [m["coordinateSystem"] for m in doc["markups"]] == [system, system]
    fg_position = doc["markups"][0]["controlPoints"][0]["position"]
    lps = np.array(index_to_world(reference, objects[0].foreground))
    assert np.allclose(fg_position, lps * ([-1, -1, 1] if system == "RAS" else 1))
    assert read_clicks(path, reference) == objects


def test_csv_round_trip_several_cases_with_their_own_geometry(tmp_path, reference, objects):
    other, _ = ellipsoid_case(shape=(30, 30, 30), spacing=(1.2, 1.2, 1.2), origin=(5, -5, 100))
    other_objects = [protocol((15, 14, 16), (6, 6, 6), (24, 24, 24))]
    path = tmp_path / "clicks.csv"
    write_csv({"caseA": (objects, reference), "caseB": (other_objects, other)}, path)
    assert path.read_text().splitlines()[0] == "case,x,y,z,kind,object,class"
    assert csv_cases(path) == ["caseA", "caseB"]
    assert read_clicks(path, reference, case="caseA") == objects
    assert read_clicks(path, other, case="caseB") == other_objects
    with pytest.raises(ClickError, match="2 cases.*say which case"):
        read_clicks(path, reference)
    with pytest.raises(ClickError, match="caseC.*no clicks"):
        read_clicks(path, reference, case="caseC")


def test_formats_agree_with_simpleitk_physical_points(tmp_path, reference, objects):
    """Point files written by hand with SimpleITK's own index->world mapping read back to the same voxels."""
    def lps(idx):
        return reference.TransformIndexToPhysicalPoint([int(v) for v in idx[::-1]])

    obj = objects[0]
    rows = ["case,x,y,z,kind,object"] + [f"c1,{','.join(map(repr, lps(p)))},{k},1"
                                         for k, p in [("fg", obj.foreground)] + [("bg", p) for p in obj.background]]
    (tmp_path / "c.csv").write_text("\n".join(rows) + "\n")
    ras = [{"label": f"F-{i}", "position": [-lps(p)[0], -lps(p)[1], lps(p)[2]]}
           for i, p in enumerate([obj.foreground, *obj.background], start=1)]
    (tmp_path / "c.mrk.json").write_text(json.dumps(
        {"markups": [{"type": "Fiducial", "coordinateSystem": "RAS", "controlPoints": ras}]}))
    expected = [ObjectClicks(obj.foreground, obj.background)]
    assert read_clicks(tmp_path / "c.csv", reference) == expected
    assert read_clicks(tmp_path / "c.mrk.json", reference) == expected  # 7 untagged points: first fg


def test_slicer_labels_descriptions_objects_and_classes(tmp_path, reference, objects):
    def point(p, label="", description="", status="defined"):
        return {"label": label, "description": description, "position": list(index_to_world(reference, p)),
                "positionStatus": status}

    a, b = objects
    points = [point(a.foreground, "Obj1 FG", "class 3")] + [point(p, f"obj1-bg{i}") for i, p in enumerate(a.background)]
    points += [point(b.foreground, "P", "object 2, foreground"), point((0, 0, 0), "obj2 bg", status="undefined")]
    points += [point(p, "x", "obj2 background click") for p in b.background]
    path = tmp_path / "tagged.mrk.json"
    path.write_text(json.dumps({"markups": [{"type": "Fiducial", "controlPoints": points},
                                            {"type": "Line", "controlPoints": [point((1, 1, 1))]}]}))
    got = read_clicks(path, reference, object_classes={2: 5})
    assert got == [ObjectClicks(a.foreground, a.background, 3), ObjectClicks(b.foreground, b.background, 5)]


def test_volume_blobs_and_object_gaps(tmp_path, reference):
    """Painted blobs become their central voxel; objects absent from a case keep their index for the class map."""
    arr = np.zeros(SHAPE, np.uint8)
    arr[8:11, 11:14, 9:12] = 6  # fg of object 3 as a 3x3x3 blob centred at (9, 12, 10)
    obj = protocol((9, 12, 10), (3, 4, 2), (16, 21, 19))
    for p in obj.background:  # each bg click as a 2-voxel blob along x (spacing 0.7 mm) plus its centre
        z, y, x = p
        arr[z, y, max(x - 1, 0):x + 2] = 5
    out = sitk.GetImageFromArray(arr)
    out.CopyInformation(reference)
    path = tmp_path / "case.mha"
    sitk.WriteImage(out, str(path))
    classes_sidecar(path).write_text(json.dumps({"object_classes": {"1": 1, "2": 2, "3": 4}}))
    assert canonical(read_clicks(path, reference)) == canonical([ObjectClicks(obj.foreground, obj.background, 4)])


# ----------------------------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("change, match", [
    (lambda im: im.SetSpacing((0.7, 0.9, 2.6)), "spacing"),
    (lambda im: im.SetOrigin((-12.3, 45.6, -78.0)), "origin"),
    (lambda im: im.SetDirection((1, 0, 0, 0, 1, 0, 0, 0, 1)), "direction"),
])
def test_geometry_mismatch(tmp_path, reference, objects, change, match):
    ann = _annotation(reference, _volume_values(objects))
    change(ann)
    path = tmp_path / "case.nrrd"
    sitk.WriteImage(ann, str(path))
    with pytest.raises(ClickError, match=f"case.nrrd.*grid differs.*{match}"):
        read_clicks(path, reference)


def test_size_mismatch(tmp_path, reference):
    small, _ = ellipsoid_case(shape=(20, 26, 22), spacing=SPACING, origin=ORIGIN, direction=DIRECTION)
    path = tmp_path / "case.nii.gz"
    sitk.WriteImage(sitk.Cast(small, sitk.sitkUInt8), str(path))
    with pytest.raises(ClickError, match="case.nii.gz.*size"):
        read_clicks(path, reference)


def _write_values(tmp_path, reference, values, dtype=np.uint8, name="bad.nii.gz") -> Path:
    path = tmp_path / name
    sitk.WriteImage(_annotation(reference, values, dtype), str(path))
    return path


@pytest.mark.parametrize("edit, match", [
    (lambda v, o: {p: 1 for p in o.background}, "object 1.*no foreground"),
    (lambda v, o: {o.foreground: 2}, "object 1.*no background"),
    (lambda v, o: {**v, (1, 1, 1): 4}, r"object 2 \(values 3/4\).*no background"),
    (lambda v, o: {**v, (1, 1, 1): 2}, "painted in 2 separate places"),
    (lambda v, o: {**{p: 1 for p in o.background[:5]}, o.foreground: 2}, "do not enclose"),
    (lambda v, o: {**{p: 5 for p in o.background[1:]}, o.foreground: 6}, r"object 3 \(class 1\).*do not enclose"),
    (lambda v, o: {}, "no clicks"),
])
def test_bad_annotation_structure(tmp_path, reference, objects, edit, match):
    obj = objects[0]
    path = _write_values(tmp_path, reference, edit(_volume_values([obj]), obj))
    with pytest.raises(ClickError, match=f"bad.nii.gz.*{match}"):
        read_clicks(path, reference)


def test_annotation_values_must_be_non_negative_integers(tmp_path, reference, objects):
    values = _volume_values(objects[:1])
    path = _write_values(tmp_path, reference, {**values, (0, 0, 0): 1.5}, np.float32, "frac.mha")
    with pytest.raises(ClickError, match="frac.mha.*integers.*1.5"):
        read_clicks(path, reference)
    path = _write_values(tmp_path, reference, {**values, (0, 0, 0): -1}, np.int16, "neg.nrrd")
    with pytest.raises(ClickError, match="neg.nrrd.*>= 0"):
        read_clicks(path, reference)
    # integral floats are accepted
    path = _write_values(tmp_path, reference, values, np.float32, "float.nrrd")
    assert canonical(read_clicks(path, reference)) == canonical(objects[:1])


def test_class_mappings_must_cover_and_agree(tmp_path, reference, objects):
    path = tmp_path / "case.nii.gz"
    write_annotation_volume(objects, reference, path)  # sidecar: 1 -> 1, 2 -> 2
    assert [o.label for o in read_clicks(path, reference, object_classes={2: 2})] == [1, 2]
    with pytest.raises(ClickError, match="object 2 has class 2 in the file but 3"):
        read_clicks(path, reference, object_classes={2: 3})
    classes_sidecar(path).unlink()
    with pytest.raises(ClickError, match="object 2 has no class"):
        read_clicks(path, reference, object_classes={1: 1})
    classes_sidecar(path).write_text('{"classes": [1, 2]}')
    with pytest.raises(ClickError, match=r"case.classes.json: not a class sidecar"):
        read_clicks(path, reference)


def test_unreadable_and_unknown_files(tmp_path, reference):
    corrupt = tmp_path / "corrupt.nii.gz"
    corrupt.write_bytes(b"\x1f\x8b not really gzip" * 10)
    with pytest.raises(ClickError, match=r"could not read \S*corrupt\.nii\.gz: no image reader recognises it"):
        read_clicks(corrupt, reference)
    (tmp_path / "clicks.txt").write_text("1 2 3")
    with pytest.raises(ClickError, match="clicks.txt: unknown click file type"):
        read_clicks(tmp_path / "clicks.txt", reference)
    with pytest.raises(ClickError, match="missing.csv: no such file"):
        read_clicks(tmp_path / "missing.csv", reference)
    (tmp_path / "broken.mrk.json").write_text('{"markups": [')
    with pytest.raises(ClickError, match="broken.mrk.json: cannot read"):
        read_clicks(tmp_path / "broken.mrk.json", reference)
    (tmp_path / "other.mrk.json").write_text('{"points": []}')
    with pytest.raises(ClickError, match="other.mrk.json: not a 3D Slicer markups file"):
        read_clicks(tmp_path / "other.mrk.json", reference)
    (tmp_path / "binary.csv").write_bytes(b"\xff\xfe\x00garbage\x00")
    with pytest.raises(ClickError, match="binary.csv"):
        read_clicks(tmp_path / "binary.csv", reference)


@pytest.mark.parametrize("body, match", [
    ("case,x,y,kind,object\n", r"header.*missing \['z'\]"),
    ("case,x,y,z,kind,object,colour\n", r"unknown \['colour'\]"),
    ("case,x,y,z,kind,object\nc,1,2,abc,fg,1\n", r"line 2: x, y, z must be numbers"),
    ("case,x,y,z,kind,object\n\nc,1,2,3,fg,1\nc,1,2,3,inside,1\n", r"line 4: kind 'inside'"),
    ("case,x,y,z,kind,object\nc,1,2,3,fg,0\n", r"line 2: object must be >= 1"),
    ("case,x,y,z,kind,object\nc,1,2,3,fg\n", r"line 2: 5 fields where the header has 6"),
    ("case,x,y,z,kind,object,class\nc,1,2,3,fg,1,two\n", r"line 2: class 'two' is not an integer"),
    ("case,x,y,z,kind,object\nc,nan,2,3,fg,1\n", r"line 2: x, y, z must be finite"),
])
def test_bad_csv_rows(tmp_path, reference, body, match):
    path = tmp_path / "bad.csv"
    path.write_text(body)
    with pytest.raises(ClickError, match=f"bad.csv.*{match}"):
        read_clicks(path, reference, case="c")


def _csv(tmp_path, objects_points: list[tuple[str, tuple[float, ...], int, str]]) -> Path:
    path = tmp_path / "c.csv"
    path.write_text("case,x,y,z,kind,object,class\n" + "".join(
        f"c,{x},{y},{z},{kind},{obj},{cls}\n" for kind, (x, y, z), obj, cls in objects_points))
    return path


def test_csv_click_semantics(tmp_path, reference, objects):
    obj = objects[0]
    fg = ("fg", index_to_world(reference, obj.foreground), 1, "")
    bgs = [("bg", index_to_world(reference, p), 1, "") for p in obj.background]
    with pytest.raises(ClickError, match="line 2: fg click of object 1 .* outside the image"):
        read_clicks(_csv(tmp_path, [("fg", (1e4, 0, 0), 1, "")] + bgs), reference)
    with pytest.raises(ClickError, match="c.csv \\(case c\\): object 1: 0 foreground rows"):
        read_clicks(_csv(tmp_path, bgs), reference)
    with pytest.raises(ClickError, match="object 1: 2 foreground rows"):
        read_clicks(_csv(tmp_path, [fg, fg] + bgs), reference)
    with pytest.raises(ClickError, match="object 1: no background rows"):
        read_clicks(_csv(tmp_path, [fg]), reference)
    with pytest.raises(ClickError, match="do not enclose"):
        read_clicks(_csv(tmp_path, [fg] + bgs[1:]), reference)
    with pytest.raises(ClickError, match=r"conflicting classes \[1, 2\]"):
        read_clicks(_csv(tmp_path, [fg[:3] + ("1",)] + bgs[:-1] + [bgs[-1][:3] + ("2",)]), reference)


def _markup(points, **extra) -> str:
    return json.dumps({"markups": [{"type": "Fiducial", "controlPoints": points, **extra}]})


def test_bad_slicer_files(tmp_path, reference, objects):
    obj = objects[0]
    world = [list(index_to_world(reference, p)) for p in [obj.foreground, *obj.background]]
    path = tmp_path / "bad.mrk.json"
    cases = [
        (_markup([{"label": "F", "position": w} for w in world[:5]]), r"neither fg nor bg"),
        (_markup([{"label": "fg", "position": world[0]}] + [{"label": "F", "position": w} for w in world[1:]]),
         r"point\(s\) \['F', .*neither fg nor bg"),
        (_markup([{"label": "fg bg", "position": world[0]}]), r"conflicting fg/bg tags \['bg', 'fg'\]"),
        (_markup([{"label": "fg", "position": w} for w in world[:2]] + [{"label": "bg", "position": w}
                                                                       for w in world[2:]]),
         "object 1: 2 foreground clicks"),
        (_markup([{"label": "fg", "position": world[0]}]), "object 1: no background clicks"),
        (_markup([{"label": "fg", "position": [1e4, 0, 0]}] + [{"label": "bg", "position": w} for w in world[1:]]),
         r"point 'fg' \(object 1, fg\): LPS position .* outside the image"),
        (_markup([{"label": "fg", "position": [1, "a", 2]}]), "not three finite numbers"),
        (_markup([], coordinateSystem="IJK"), "coordinateSystem 'IJK'"),
        (_markup([{"label": "fg class1", "position": world[0]}, {"label": "bg class2", "position": world[1]}]),
         r"object 1: conflicting class tags \['1', '2'\]"),
        (json.dumps({"markups": [{"type": "Line", "controlPoints": []}]}), "no clicks found"),
    ]
    for body, match in cases:
        path.write_text(body)
        with pytest.raises(ClickError, match=f"bad.mrk.json.*{match}"):
            read_clicks(path, reference)


def test_writers_refuse_what_they_cannot_hold(tmp_path, reference, objects):
    around = protocol((9, 12, 10), (2, 3, 1), (17, 22, 20)).background
    clash = [objects[0], ObjectClicks(objects[0].background[0], around)]
    with pytest.raises(ClickError, match="already used by object 1"):
        write_annotation_volume(clash, reference, tmp_path / "clash.nii.gz")
    with pytest.raises(ClickError, match="out.csv \\(case c\\).*outside the image"):
        write_csv({"c": ([protocol((9, 12, 10), (3, 4, 2), (16, 21, 40))], reference)}, tmp_path / "out.csv")
    with pytest.raises(ValueError, match="LPS or RAS"):
        write_slicer_markups(objects, reference, tmp_path / "x.mrk.json", coordinate_system="XYZ")


def test_validate_requires_strict_enclosure():
    obj = protocol((5, 5, 5), (2, 2, 2), (8, 8, 8))
    validate_objects([obj], (10, 10, 10), "s")
    on_face = ObjectClicks((5, 5, 5), tuple(p for p in obj.background if p != (2, 5, 5)))
    with pytest.raises(ClickError, match="s: object 1.*do not enclose"):
        validate_objects([on_face], (10, 10, 10), "s")
    # on the image border the box cannot, and need not, extend beyond the foreground click
    at_border = ObjectClicks((0, 5, 9), ((0, 2, 9), (0, 8, 9), (1, 5, 9), (0, 5, 7)))
    validate_objects([at_border], (10, 10, 10), "s")
