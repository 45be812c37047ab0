"""Writers on real CT grids: atomic output, label maps, Slicer .seg.nrrd (read back by Slicer's own
code), statistics and the preview PNG."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from mome.imaging import resample, same_grid
from mome.io import (
    atomic_write,
    read_seg_nrrd,
    render_preview,
    structure_statistics,
    to_label_map,
    write_labelmap,
    write_seg_nrrd,
    write_statistics,
)
from mome.io.legend import (
    labelmap_overlaps,
    legend_paths,
    overlap_lines,
    write_itksnap_labels,
    write_slicer_color_table,
)
from mome.io.preview import _orient_lps
from mome.vocabulary.codes import Code, SegmentDescriptor

ANATOMY = Code("123037004", "SCT", "Anatomical Structure")
SEGMENTS = [
    SegmentDescriptor("liver", "liver", (221, 130, 101), ANATOMY, Code("10200004", "SCT", "Liver")),
    SegmentDescriptor(
        "liver_tumor",
        "liver tumour",
        (255, 0, 0),
        Code("49755003", "SCT", "Morphologically Altered Structure"),
        Code("108369006", "SCT", "Neoplasm"),
    ),
    SegmentDescriptor(
        "kidney_left",
        "left kidney",
        (0, 90, 255),
        ANATOMY,
        Code("64033007", "SCT", "Kidney"),
        Code("7771000", "SCT", "Left"),
    ),
]


@pytest.fixture(scope="module")
def ct(shared_data: Path) -> sitk.Image:
    return sitk.ReadImage(str(shared_data / "totalseg_example" / "example_ct_sm.nii.gz"), sitk.sitkInt16)


@pytest.fixture(scope="module")
def masks(shared_data: Path) -> list[np.ndarray]:
    """Real liver and left kidney (TotalSegmentator labels 5 and 3) plus a 'tumour' inside the liver."""
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(shared_data / "totalseg_example" / "example_seg.nii.gz")))
    liver, kidney = labels == 5, labels == 3
    assert liver.sum() > 1000 and kidney.sum() > 100
    z, y, x = np.argwhere(liver).mean(axis=0).astype(int)
    tumour = np.zeros_like(liver)
    tumour[z - 2 : z + 3, y - 3 : y + 4, x - 3 : x + 4] = True
    tumour &= liver
    return [liver, tumour, kidney]


def _oblique(image: sitk.Image) -> sitk.Image:
    a = np.radians(25.0)
    rotation = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    oblique = sitk.Image(image)
    oblique.SetDirection((rotation @ np.array(image.GetDirection()).reshape(3, 3)).ravel().tolist())
    return oblique


# --- atomic_write ---------------------------------------------------------------------------------


def test_atomic_write_keeps_suffix_and_renames(ct: sitk.Image, tmp_path: Path) -> None:
    for name in ("out.nii.gz", "out.seg.nrrd", "out.png"):
        target = tmp_path / name
        with atomic_write(target) as tmp:
            assert tmp.parent == tmp_path and tmp.name.endswith(name[3:]) and tmp.name.startswith(".out.tmp")
            if name.endswith(".png"):
                Image.new("RGB", (4, 4)).save(tmp)
            else:
                sitk.WriteImage(ct[:8, :8, :4], str(tmp))
        assert target.is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.nii.gz", "out.png", "out.seg.nrrd"]
    assert sitk.ReadImage(str(tmp_path / "out.nii.gz")).GetSize() == (8, 8, 4)


def test_keyboard_interrupt_leaves_no_file(ct: sitk.Image, tmp_path: Path) -> None:
    target = tmp_path / "result.nii.gz"
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(target) as tmp:
            sitk.WriteImage(ct, str(tmp))
            assert tmp.exists()
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_failure_keeps_previous_file(tmp_path: Path) -> None:
    target = tmp_path / "stats.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("writer crashed")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["stats.json"]


# --- label map -------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".nrrd", ".nii.gz"])
def test_labelmap_round_trip_later_mask_wins(
    ct: sitk.Image, masks: list[np.ndarray], tmp_path: Path, suffix: str
) -> None:
    path = write_labelmap(tmp_path / f"labels{suffix}", masks, ct)
    back = sitk.ReadImage(str(path))
    assert back.GetPixelID() == sitk.sitkUInt8
    assert same_grid(back, ct)
    labels = sitk.GetArrayFromImage(back)
    np.testing.assert_array_equal(labels, to_label_map(np.stack(masks)))
    liver, tumour, kidney = masks
    assert tumour.any() and (labels[tumour] == 2).all()  # tumour drawn over the liver
    assert (labels[liver & ~tumour] == 1).all() and (labels[kidney] == 3).all()
    assert (labels[~(liver | kidney)] == 0).all()


def test_labelmap_uses_uint16_beyond_255_masks(ct: sitk.Image, tmp_path: Path) -> None:
    small = ct[:20, :20, :2]
    masks = [np.zeros((2, 20, 20), dtype=bool) for _ in range(300)]
    masks[299][1, 5, 7] = True
    back = sitk.ReadImage(str(write_labelmap(tmp_path / "many.nrrd", masks, small)))
    assert back.GetPixelID() == sitk.sitkUInt16 and sitk.GetArrayViewFromImage(back)[1, 5, 7] == 300


def test_labelmap_rejects_masks_on_another_grid(ct: sitk.Image, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not match|shape"):
        write_labelmap(tmp_path / "bad.nrrd", [np.zeros((3, 4, 5), dtype=bool)], ct)
    assert not any(tmp_path.iterdir())


# --- Slicer .seg.nrrd --------------------------------------------------------------------------------


def _slicer_read(path: Path):
    """Load a .seg.nrrd with Slicer's own storage node (slicer-core, no GUI)."""
    slicer = pytest.importorskip("slicer", reason="slicer-core is needed to read .seg.nrrd back")
    scene = slicer.vtkMRMLScene()
    logic = slicer.vtkSlicerSegmentationsModuleLogic()
    logic.SetMRMLScene(scene)  # registers the labelmap representation before any segment exists
    node = slicer.vtkMRMLSegmentationNode()
    scene.AddNode(node)
    storage = slicer.vtkMRMLSegmentationStorageNode()
    scene.AddNode(storage)
    storage.SetFileName(str(path))
    assert storage.ReadData(node) == 1
    return node.GetSegmentation()


def _slicer_write(segmentation_path: Path, out: Path) -> None:
    """Load with Slicer and save again: Slicer crops to the segments and numbers labels per layer."""
    slicer = pytest.importorskip("slicer", reason="slicer-core is needed to write a Slicer .seg.nrrd")
    scene = slicer.vtkMRMLScene()
    logic = slicer.vtkSlicerSegmentationsModuleLogic()
    logic.SetMRMLScene(scene)
    node = slicer.vtkMRMLSegmentationNode()
    scene.AddNode(node)
    storage = slicer.vtkMRMLSegmentationStorageNode()
    scene.AddNode(storage)
    storage.SetFileName(str(segmentation_path))
    assert storage.ReadData(node) == 1
    storage.SetFileName(str(out))
    assert storage.WriteData(node) == 1


def _slicer_tag(segment, key: str) -> str:
    import vtk

    value = vtk.reference("")
    assert segment.GetTag(key, value), key
    return str(value)


def _slicer_mask_and_lps_matrix(segmentation, segment_id: str, reference: sitk.Image) -> tuple[np.ndarray, np.ndarray]:
    """The segment as a full-size (z, y, x) mask and its index-to-LPS matrix, from Slicer's RAS data."""
    import vtk
    from vtk.util.numpy_support import vtk_to_numpy

    labelmap = segmentation.GetSegment(segment_id).GetRepresentation("Binary labelmap")
    matrix = vtk.vtkMatrix4x4()
    labelmap.GetImageToWorldMatrix(matrix)
    ras = np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ ras
    x0, x1, y0, y1, z0, z1 = labelmap.GetExtent()
    values = vtk_to_numpy(labelmap.GetPointData().GetScalars()).reshape(z1 - z0 + 1, y1 - y0 + 1, x1 - x0 + 1)
    full = np.zeros(reference.GetSize()[::-1], dtype=bool)
    # Slicer crops to the non-empty extent; indices stay those of the reference grid.
    assert min(x0, y0, z0) >= 0 and (x1, y1, z1) < reference.GetSize()
    full[z0 : z1 + 1, y0 : y1 + 1, x0 : x1 + 1] = values == segmentation.GetSegment(segment_id).GetLabelValue()
    return full, lps


def _index_to_lps(image: sitk.Image) -> np.ndarray:
    matrix = np.eye(4)
    matrix[:3, :3] = np.array(image.GetDirection()).reshape(3, 3) @ np.diag(image.GetSpacing())
    matrix[:3, 3] = image.GetOrigin()
    return matrix


@pytest.mark.parametrize("oblique", [False, True], ids=["ras_file", "oblique"])
def test_seg_nrrd_read_by_slicer(ct: sitk.Image, masks: list[np.ndarray], tmp_path: Path, oblique: bool) -> None:
    reference = _oblique(ct) if oblique else ct
    path = write_seg_nrrd(tmp_path / "result.seg.nrrd", masks, reference, SEGMENTS, "MoME 0.1")
    segmentation = _slicer_read(path)
    assert [segmentation.GetNthSegmentID(i) for i in range(segmentation.GetNumberOfSegments())] == [
        "liver",
        "liver_tumor",
        "kidney_left",
    ]
    for descriptor, mask in zip(SEGMENTS, masks, strict=True):
        segment = segmentation.GetSegment(descriptor.key)
        assert segment.GetName() == descriptor.name
        np.testing.assert_allclose(segment.GetColor(), np.array(descriptor.color) / 255, atol=1e-5)
        entry = _slicer_tag(segment, "TerminologyEntry")
        assert entry.split("~")[1:4] == [
            descriptor.category.slicer_triplet(),
            descriptor.type.slicer_triplet(),
            descriptor.type_modifier.slicer_triplet() if descriptor.type_modifier else "^^",
        ]
        assert _slicer_tag(segment, "DICOM.SegmentAlgorithmType") == "AUTOMATIC"
        assert _slicer_tag(segment, "DICOM.SegmentAlgorithmName") == "MoME 0.1"
        full, lps = _slicer_mask_and_lps_matrix(segmentation, descriptor.key, reference)
        np.testing.assert_array_equal(full, mask)  # overlap kept: tumour voxels are liver voxels too
        np.testing.assert_allclose(lps, _index_to_lps(reference), atol=1e-6)
    # Organ and tumour overlap, so they must be in different layers.
    assert segmentation.GetLayerIndex("liver") != segmentation.GetLayerIndex("liver_tumor")


def test_seg_nrrd_round_trip_with_own_reader(ct: sitk.Image, masks: list[np.ndarray], tmp_path: Path) -> None:
    custom = (
        "Segmentation category and type - DICOM master list~SCT^123037004^Anatomical Structure"
        "~SCT^10200004^Liver~^^~Anatomic codes - DICOM master list~^^~^^"
    )
    from mome.vocabulary import GENERAL_ANATOMY_CONTEXT_NAME, slicer_terminology_entry

    entries = [custom] + [slicer_terminology_entry(s, GENERAL_ANATOMY_CONTEXT_NAME) for s in SEGMENTS[1:]]
    path = write_seg_nrrd(tmp_path / "r.seg.nrrd", masks, ct, SEGMENTS, "MoME", terminology_entries=entries)
    infos, back, grid = read_seg_nrrd(path)
    np.testing.assert_array_equal(back, np.stack(masks))
    assert same_grid(grid, ct, tol=1e-9)
    assert [i["descriptor"] for i in infos] == SEGMENTS
    assert infos[0]["terminology_entry"] == custom
    assert infos[2]["tags"]["DICOM.SegmentAlgorithmName"] == "MoME"
    assert len({i["layer"] for i in infos}) == 2


def test_read_seg_nrrd_of_a_slicer_written_file(ct: sitk.Image, masks: list[np.ndarray], tmp_path: Path) -> None:
    ours = write_seg_nrrd(tmp_path / "ours.seg.nrrd", masks, ct, SEGMENTS, "MoME")
    _slicer_write(ours, tmp_path / "slicer.seg.nrrd")
    infos, back, grid = read_seg_nrrd(tmp_path / "slicer.seg.nrrd")
    assert grid.size != tuple(ct.GetSize())  # Slicer cropped the grid ...
    assert [i["descriptor"] for i in infos] == SEGMENTS  # ... but kept names, colours and codes
    for mask, cropped in zip(masks, back, strict=True):
        image = grid.image_from_array(cropped.astype(np.uint8))
        np.testing.assert_array_equal(sitk.GetArrayFromImage(resample(image, ct, "nearest")) > 0, mask)


def test_seg_nrrd_without_overlap_is_3d(ct: sitk.Image, masks: list[np.ndarray], tmp_path: Path) -> None:
    import nrrd

    liver, _, kidney = masks
    path = write_seg_nrrd(tmp_path / "flat.seg.nrrd", [liver, kidney], ct, [SEGMENTS[0], SEGMENTS[2]], "MoME")
    header = nrrd.read_header(str(path))
    assert header["dimension"] == 3 and header["kinds"] == ["domain"] * 3
    assert header["Segment1_Layer"] == "0" and header["Segment1_LabelValue"] == "2"
    segmentation = _slicer_read(path)
    assert segmentation.GetNumberOfSegments() == 2


# --- statistics --------------------------------------------------------------------------------------


def test_statistics_volume_and_hu(ct: sitk.Image, masks: list[np.ndarray], tmp_path: Path) -> None:
    rows = structure_statistics(masks, ct, SEGMENTS, [{"status": "weak"}, {"status": "x"}, {"status": "y"}])
    voxel_ml = np.prod(ct.GetSpacing()) / 1000
    values = sitk.GetArrayViewFromImage(ct)
    for value, (row, mask, segment) in enumerate(zip(rows, masks, SEGMENTS, strict=True), start=1):
        assert row["label_value"] == value and row["key"] == segment.key and row["voxel_count"] == int(mask.sum())
        assert row["volume_ml"] == pytest.approx(mask.sum() * voxel_ml, abs=0.005)  # to 0.01 mL
        assert row["mean_hu"] == pytest.approx(values[mask].mean(), abs=0.05)  # to 0.1 HU
        assert row["min_hu"] == values[mask].min() and isinstance(row["min_hu"], int)  # int16 CT: whole HU
    assert rows[0]["status"] == "weak"
    assert 20 < rows[0]["mean_hu"] < 200  # contrast-free-to-portal liver, a real HU sanity check
    # The tumour lies inside the liver and wins there in a label map; the CSV says so.
    tumour = int(masks[1].sum())
    assert rows[0]["labelmap_voxels"] == rows[0]["voxel_count"] - tumour
    assert f"{tumour} under liver tumour (value 2)" in rows[0]["labelmap_note"]
    assert rows[1]["labelmap_voxels"] == tumour and rows[1]["labelmap_note"] == ""
    labels = to_label_map(masks)
    assert [int((labels == r["label_value"]).sum()) for r in rows] == [r["labelmap_voxels"] for r in rows]
    empty = structure_statistics([np.zeros_like(masks[0])], ct, SEGMENTS[:1])[0]
    assert empty["voxel_count"] == 0 and empty["mean_hu"] is None

    write_statistics(tmp_path / "s.csv", rows)
    text = (tmp_path / "s.csv").read_text()
    assert not any(len(number) > 9 for number in re.findall(r"-?\d+\.\d+", text)), "unrounded numbers"
    table = list(csv.DictReader(text.splitlines()))
    assert list(table[0])[:3] == ["label_value", "key", "name"]
    assert [r["key"] for r in table] == [s.key for s in SEGMENTS]
    assert float(table[0]["volume_ml"]) == rows[0]["volume_ml"]
    write_statistics(tmp_path / "s.json", rows)
    assert json.loads((tmp_path / "s.json").read_text()) == rows


# --- label-map legends ---------------------------------------------------------------------------


def test_legends_name_every_value_and_state_the_overlap(ct: sitk.Image, masks: list[np.ndarray],
                                                        tmp_path: Path) -> None:
    paths = legend_paths(tmp_path / "labels.nii.gz")
    assert {k: p.name for k, p in paths.items()} == {"legend_slicer": "labels.ctbl",
                                                      "legend_itksnap": "labels.itksnap.txt"}
    overlaps = labelmap_overlaps(masks)
    assert [(o.hidden, o.shown, o.voxels) for o in overlaps] == [(0, 1, int(masks[1].sum()))]
    notes = overlap_lines(SEGMENTS, overlaps)
    write_slicer_color_table(paths["legend_slicer"], SEGMENTS, notes, "labels.nii.gz")
    write_itksnap_labels(paths["legend_itksnap"], SEGMENTS, notes, "labels.nii.gz")

    # Slicer reads the colour table with its own storage node (slicer-core).
    slicer = pytest.importorskip("slicer", reason="slicer-core is needed to read the colour table back")
    scene = slicer.vtkMRMLScene()
    table = slicer.vtkMRMLColorTableNode()
    scene.AddNode(table)
    storage = slicer.vtkMRMLColorTableStorageNode()
    scene.AddNode(storage)
    storage.SetFileName(str(paths["legend_slicer"]))
    assert storage.ReadData(table) == 1
    assert [table.GetColorName(i) for i in range(table.GetNumberOfColors())] == ["Background"] + [
        s.name for s in SEGMENTS]
    rgba = [0.0] * 4
    table.GetColor(3, rgba)
    assert np.allclose(rgba[:3], np.array(SEGMENTS[2].color) / 255)
    assert "where structures overlap, the later prompt wins" in paths["legend_slicer"].read_text()

    # ITK-SNAP's label description format: IDX R G B A VIS MSH "LABEL" after '#' comments.
    rows = [line for line in paths["legend_itksnap"].read_text().splitlines() if not line.startswith("#")]
    parsed = [re.fullmatch(r'\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+([\d.]+)\s+([01])\s+([01])\s+"(.*)"', r) for r in rows]
    assert all(parsed), rows
    assert [(int(m[1]), m[8]) for m in parsed] == [(0, "Clear Label")] + [(i + 1, s.name) for i, s in
                                                                          enumerate(SEGMENTS)]
    assert tuple(int(v) for v in parsed[1].groups()[1:4]) == SEGMENTS[0].color


# --- preview -----------------------------------------------------------------------------------------


def test_preview_png_has_overlay_colours(ct: sitk.Image, masks: list[np.ndarray], tmp_path: Path) -> None:
    path = render_preview(tmp_path / "preview.png", ct, masks, SEGMENTS, n_axial=3, coronal=True)
    with Image.open(path) as png:
        assert png.format == "PNG" and png.mode == "RGB"
        pixels = np.asarray(png).astype(int)
    tiles = pixels[: pixels.shape[0] - 3 * 16]  # above the legend
    r, g, b = tiles[..., 0], tiles[..., 1], tiles[..., 2]
    assert ((r - g > 60) & (r - b > 60)).sum() > 20  # red tumour / reddish liver blended over grey CT
    assert ((b - r > 60) & (b - g > 20)).sum() > 20  # blue kidney
    assert (np.abs(r - g) < 3).mean() > 0.5  # most of the picture is still grey CT


def test_preview_orientation_matches_dicom_orient(ct: sitk.Image, masks: list[np.ndarray]) -> None:
    # A permuted, flipped, oblique direction: the numpy shortcut must equal SimpleITK's DICOMOrient.
    kidney = sitk.GetImageFromArray(masks[2].astype(np.uint8))
    kidney.CopyInformation(ct)

    def scramble(image: sitk.Image) -> sitk.Image:
        return sitk.Flip(sitk.PermuteAxes(_oblique(image), [2, 0, 1]), [True, False, True])

    image, kidney = scramble(ct), scramble(kidney)
    _, oriented, _ = _orient_lps(image, sitk.GetArrayFromImage(kidney)[np.newaxis] > 0)
    expected = sitk.GetArrayFromImage(sitk.DICOMOrient(kidney, "LPS")) > 0
    assert expected.shape != masks[2].shape or not np.array_equal(expected, masks[2])
    np.testing.assert_array_equal(oriented[0], expected)
