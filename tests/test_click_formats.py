"""The click-format registry and the image-suffix table: every format round-trips through the registry, the tools
accept exactly the registry's formats, and README lists them."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import SimpleITK as sitk

from dataset_conversion import paseg_convert
from dataset_conversion.paseg_convert import find_annotations
from point_tools.click_formats import CLICK_FORMATS, FORMAT_CHOICES, ClickFormat, click_format, format_of, read_clicks
from point_tools.clicks import ClickError
from point_tools.image_files import IMAGE_SUFFIXES, image_stem, image_suffix
from point_tools.simulate import build_parser, simulate_clicks
from synthetic import ellipsoid_case

REPO_ROOT = Path(__file__).resolve().parent.parent
FORMATS = list(CLICK_FORMATS.values())


def canonical(objects: list) -> list[tuple]:
    """Objects with background clicks in sorted order (the volume format does not keep their order)."""
    return [(o.foreground, tuple(sorted(o.background)), o.label) for o in objects]


@pytest.fixture
def cases() -> dict[str, tuple[list, sitk.Image]]:
    """Two cases, each with its own geometry (one oblique), and their simulated clicks."""
    out = {}
    for n, (spacing, direction) in enumerate([((0.8, 0.9, 2.0), (1, 0, 0, 0, 1, 0, 0, 0, 1)),
                                              ((1.1, 1.0, 1.3), (0.8, -0.6, 0, 0.6, 0.8, 0, 0, 0, 1))]):
        image, mask = ellipsoid_case(shape=(20, 26, 22), radii=(5, 6, 5), seed=n, spacing=spacing,
                                     origin=(10.0 * n, -5.0, 3.0), direction=direction)
        out[f"case{n}"] = (simulate_clicks(sitk.GetArrayFromImage(mask), spacing[::-1]), image)
    return out


@pytest.mark.parametrize("fmt", FORMATS, ids=[f.name for f in FORMATS])
def test_every_format_round_trips_through_the_registry(tmp_path, cases, fmt: ClickFormat):
    written = fmt.write(cases, tmp_path)
    assert written == ([tmp_path / fmt.file_name(case) for case in cases] if fmt.per_case
                       else [tmp_path / fmt.file_name()])
    assert all(format_of(path) is fmt for path in written)
    if not fmt.per_case:
        assert fmt.cases(written[0]) == list(cases)
    for n, (case, (objects, image)) in enumerate(cases.items()):
        path = written[n if fmt.per_case else 0]
        assert canonical(read_clicks(path, image, case=case)) == canonical(objects)


def test_each_suffix_names_one_format_and_each_name_one_format():
    suffixes = [s for f in FORMATS for s in f.suffixes]
    assert len(set(suffixes)) == len(suffixes)
    for fmt in FORMATS:
        for suffix in fmt.suffixes:
            assert format_of(f"dir/Case{suffix.upper()}") is fmt
        for name in (fmt.name, *fmt.aliases):
            assert click_format(name) is fmt
    assert sorted(FORMAT_CHOICES) == sorted(n for f in FORMATS for n in (f.name, *f.aliases))
    assert click_format("mrk") is click_format("slicer")  # the Slicer format's former --format name
    with pytest.raises(ValueError, match="unknown click format 'txt'"):
        click_format("txt")
    with pytest.raises(ClickError, match="notes.txt: unknown click file type"):
        format_of("notes.txt")


def test_simulate_accepts_exactly_the_registry_formats():
    (action,) = [a for a in build_parser()._actions if a.dest == "format"]
    assert tuple(action.choices) == FORMAT_CHOICES
    for fmt in FORMATS:
        assert f"{fmt.name}: {fmt.title}" in action.help


@pytest.mark.parametrize("fmt", FORMATS, ids=[f.name for f in FORMATS])
def test_paseg_convert_finds_the_cases_of_every_format(tmp_path, cases, fmt: ClickFormat):
    folder = tmp_path / "clicks"
    folder.mkdir()
    (written,) = {p.parent if fmt.per_case else p for p in fmt.write(cases, folder)}
    files, problems = find_annotations(written, list(cases))
    assert problems == []
    assert files == {case: folder / fmt.file_name(case) for case in cases}
    if fmt.per_case:  # a per-case file is not what -a takes by itself
        _, problems = find_annotations(folder / fmt.file_name("case0"), list(cases))
        assert problems and "-a takes a folder of per-case click files" in problems[0]


def test_paseg_convert_rejects_files_of_no_format(tmp_path, cases):
    CLICK_FORMATS["volume"].write(cases, tmp_path)
    (tmp_path / "case0.classes.json").write_text('{"object_classes": {"1": 1}}')  # a companion: skipped
    (tmp_path / "case1.txt").write_text("1 2 3")
    files, problems = find_annotations(tmp_path, list(cases))
    assert set(files) == set(cases)
    assert problems == [f"{tmp_path / 'case1.txt'}: not a click annotation file (CASE with one of "
                        f"{', '.join(paseg_convert.PER_CASE_SUFFIXES)})"]
    _, problems = find_annotations(tmp_path / "case1.txt", list(cases))
    assert "-a takes a folder" in problems[0]


def test_paseg_convert_help_names_every_suffix(capsys):
    with pytest.raises(SystemExit):
        paseg_convert.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    (help_a,) = re.findall(r"-a ANNOTATIONS (.*?) -n NAME", text)
    for fmt in FORMATS:
        assert all(suffix in help_a for suffix in fmt.suffixes)


def test_readme_lists_exactly_the_registry_formats():
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("### Click formats", 1)[1].split("\n#", 1)[0]
    entries = re.findall(r"^- \*\*`(\w+)`", section, re.MULTILINE)
    assert entries == list(CLICK_FORMATS)
    for fmt in FORMATS:
        entry = section.split(f"- **`{fmt.name}`", 1)[1].split("\n- ", 1)[0]
        assert all(f"{suffix}`" in entry for suffix in fmt.suffixes), fmt.name  # `CASE.nii.gz`, `.nrrd`, ...


def test_one_image_suffix_table_and_stem():
    assert CLICK_FORMATS["volume"].suffixes == IMAGE_SUFFIXES
    assert image_suffix("a/Case_1.NII.GZ") == ".nii.gz" and image_suffix("a.nii") == ".nii"
    assert image_stem("a/Case_1.NII.GZ") == "Case_1" and image_stem("b.nhdr") == "b"
    assert image_suffix("case.mrk.json") is None
    with pytest.raises(ValueError, match="case.mrk.json: not an image file"):
        image_stem("case.mrk.json")
