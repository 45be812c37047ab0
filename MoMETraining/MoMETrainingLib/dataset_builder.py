"""Build a MoME training dataset from Slicer data: (volume, segmentation) pairs in the scene and/or a
folder of ``<case>.seg.nrrd`` files next to ``<case>.nrrd``/``.nii.gz`` images.

For every usable case the builder writes, with real MRML storage nodes, into a work folder::

    cases/<id>.nrrd          the CT volume (LPS NRRD, the volume's own grid)
    cases/<id>.seg.nrrd      one segment per vocabulary class, resampled onto that same grid, each
                             tagged with the class's terminology so the engine maps it unambiguously
    dataset.json             manifest in ``mome.training.manifest`` format (per-case split)
    report.json              what :class:`DatasetReport` says (cases, mapping, counts, problems)

Segments are mapped to vocabulary classes by terminology code first, then by name
(``mome.training.segment_mapping``). Partial labels are normal: a case annotates only the classes
of its own segments; the others are *unknown* for that case, never background.

Nothing here imports Qt or uses ``slicer.mrmlScene``/``slicer.modules``: the scene and the nodes are
arguments, so the same code runs in Slicer and under ``slicer-core`` in plain pytest.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

#: image file endings looked for next to ``<case>.seg.nrrd`` (the engine's manifest uses the same)
IMAGE_EXTENSIONS = (".nrrd", ".nii.gz", ".nii", ".mha")
BINARY_LABELMAP = "Binary labelmap"
TERMINOLOGY_TAG = "TerminologyEntry"
SOURCE_SEGMENT_TAG = "MoME.SourceSegment"

# Problem kinds (``Problem.kind``); the widget groups by them.
VOLUME_MISSING = "volume_missing"
UNREADABLE = "unreadable_file"
UNMAPPED_SEGMENT = "unmapped_segment"
EMPTY_SEGMENT = "empty_segment"
GEOMETRY_MISMATCH = "geometry_mismatch"
DUPLICATE_CLASS = "duplicate_class"
NO_USABLE_SEGMENTS = "no_usable_segments"
TRANSFORMED = "parent_transform"
NO_TRAINING_CASES = "no_training_cases"
MANIFEST_INVALID = "manifest_invalid"


@dataclass
class Problem:
    """One thing the user should know about. ``severity`` "error": the case (or the whole dataset,
    when ``case`` is None) is left out; "warning": only the named segment is left out, or the data
    was adjusted (e.g. resampled) and training can go ahead."""

    severity: str
    kind: str
    message: str
    case: str | None = None
    segment: str | None = None


@dataclass
class SegmentSummary:
    segment_id: str
    name: str
    class_key: str | None  # None: not mapped to the vocabulary
    mapped_by: str | None  # "terminology", "name" or None
    voxels: int  # on the volume grid
    used: bool


@dataclass
class CaseSummary:
    id: str
    source: str  # node names or file paths, for the user
    split: str | None  # None: left out
    classes: list[str] = field(default_factory=list)
    segments: list[SegmentSummary] = field(default_factory=list)
    image: str | None = None  # written files, relative to the work folder
    seg_nrrd: str | None = None

    @property
    def included(self) -> bool:
        return self.split is not None


@dataclass
class DatasetReport:
    work_dir: Path
    manifest_path: Path | None  # None when nothing could be written (see problems)
    cases: list[CaseSummary]
    problems: list[Problem]

    @property
    def ok(self) -> bool:
        """A manifest was written and has at least one training case."""
        return self.manifest_path is not None

    @property
    def included_cases(self) -> list[CaseSummary]:
        return [c for c in self.cases if c.included]

    def class_counts(self) -> dict[str, dict[str, int]]:
        """``{class: {"train": n, "val": m, "total": n + m}}`` over the included cases."""
        counts: dict[str, dict[str, int]] = {}
        for case in self.included_cases:
            for key in case.classes:
                row = counts.setdefault(key, {"train": 0, "val": 0, "total": 0})
                row[case.split] = row.get(case.split, 0) + 1
                row["total"] += 1
        return dict(sorted(counts.items()))

    def problems_of(self, kind: str) -> list[Problem]:
        return [p for p in self.problems if p.kind == kind]

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "work_dir": str(self.work_dir),
            "manifest": str(self.manifest_path) if self.manifest_path else None,
            "cases": [{**asdict(c), "included": c.included} for c in self.cases],
            "class_counts": self.class_counts(),
            "problems": [asdict(p) for p in self.problems],
        }


@dataclass
class CaseSource:
    """One (volume, segmentation) pair of the scene. ``volume`` None: the segmentation's reference
    geometry volume is used, if it has one. ``split`` None: chosen by the builder."""

    segmentation: Any  # vtkMRMLSegmentationNode
    volume: Any = None  # vtkMRMLScalarVolumeNode
    case_id: str | None = None
    split: str | None = None


@dataclass
class BuildOptions:
    name: str = "slicer-dataset"
    dataset_name: str = "slicer"
    holdout: int = 1  # cases held out for validation ...
    min_cases_for_holdout: int = 3  # ... when at least this many cases are usable
    compress: bool = True
    min_inside_fraction: float = 0.9  # warn when less of a segment's volume lies inside the CT


class DatasetBuilderProtocol(Protocol):
    def build(self, sources: list[CaseSource], work_dir: str | Path, folder: str | Path | None = None,
              options: BuildOptions | None = None) -> DatasetReport: ...


class DatasetBuilder:
    """``DatasetBuilder(scene).build(sources, work_dir, folder=None) -> DatasetReport``.

    ``segmentations_logic``: a ``vtkSlicerSegmentationsModuleLogic`` (in Slicer,
    ``slicer.modules.segmentations.logic()``); one is created when not given. It must exist before
    segments are added to any node (it registers the representation converters).
    """

    def __init__(self, scene, vocabulary=None, segmentations_logic=None):
        import slicer

        self.scene = scene
        self._vocabulary = vocabulary
        if segmentations_logic is None:
            segmentations_logic = slicer.vtkSlicerSegmentationsModuleLogic()
            segmentations_logic.SetMRMLScene(scene)
        self.segmentations_logic = segmentations_logic

    @property
    def vocabulary(self):
        if self._vocabulary is None:
            from mome.vocabulary import load_vocabulary

            self._vocabulary = load_vocabulary()
        return self._vocabulary

    # ------------------------------------------------------------------ public
    def build(self, sources: list[CaseSource], work_dir: str | Path, folder: str | Path | None = None,
              options: BuildOptions | None = None) -> DatasetReport:
        options = options or BuildOptions()
        work = Path(work_dir)
        (work / "cases").mkdir(parents=True, exist_ok=True)
        problems: list[Problem] = []
        cases: list[CaseSummary] = []
        before = {self.scene.GetNthNode(i).GetID() for i in range(self.scene.GetNumberOfNodes())}
        try:
            sources = list(sources)
            if folder is not None:
                sources += self._load_folder(Path(folder), problems, cases)
            used_ids = {c.id for c in cases}
            for source in sources:
                case_id = _unique_id(source.case_id or _default_case_id(source), used_ids)
                cases.append(self._export_case(source, case_id, work, options, problems))
        finally:
            # everything added here, display and storage nodes of the exports included, goes again
            added = [self.scene.GetNthNode(i) for i in range(self.scene.GetNumberOfNodes())]
            for node in reversed([n for n in added if n.GetID() not in before]):
                if node.GetScene() is not None:
                    self.scene.RemoveNode(node)
        self._assign_splits(cases, options)
        manifest_path = self._write_manifest(cases, work, options, problems)
        report = DatasetReport(work, manifest_path, cases, problems)
        (work / "report.json").write_text(json.dumps(report.to_dict(), indent=2))
        return report

    # ------------------------------------------------------------------ inputs
    def _load_folder(self, folder: Path, problems: list[Problem], cases: list[CaseSummary]) -> list[CaseSource]:
        import slicer

        if not folder.is_dir():
            problems.append(Problem("error", VOLUME_MISSING, f"folder {folder} does not exist"))
            return []
        sources = []
        seg_paths = sorted(folder.glob("*.seg.nrrd"))
        if not seg_paths:
            problems.append(Problem("warning", NO_USABLE_SEGMENTS, f"no *.seg.nrrd files in {folder}"))
        for seg_path in seg_paths:
            stem = seg_path.name[: -len(".seg.nrrd")]
            images = [folder / f"{stem}{ext}" for ext in IMAGE_EXTENSIONS if (folder / f"{stem}{ext}").is_file()]
            if not images:
                problems.append(Problem("error", VOLUME_MISSING, f"no image {stem}.nrrd / {stem}.nii.gz next to "
                                        f"{seg_path.name}; the case is left out", case=stem))
                cases.append(CaseSummary(stem, str(seg_path), None))
                continue
            volume = self.scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", f"{stem} (training)")
            segmentation = self.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", f"{stem} segmentation (training)")
            ok_volume = self._read(slicer.vtkMRMLVolumeArchetypeStorageNode(), images[0], volume)
            ok_seg = self._read(slicer.vtkMRMLSegmentationStorageNode(), seg_path, segmentation)
            if not (ok_volume and ok_seg):
                bad = images[0] if not ok_volume else seg_path
                problems.append(Problem("error", UNREADABLE, f"{bad.name} cannot be read; the case is left out",
                                        case=stem))
                cases.append(CaseSummary(stem, str(seg_path), None))
                continue
            sources.append(CaseSource(segmentation, volume, case_id=stem))
        return sources

    def _read(self, storage, path: Path, node) -> bool:
        self.scene.AddNode(storage)
        storage.SetFileName(str(path))
        return bool(storage.ReadData(node))

    # ------------------------------------------------------------------ one case
    def _export_case(self, source: CaseSource, case_id: str, work: Path, options: BuildOptions,
                     problems: list[Problem]) -> CaseSummary:
        import slicer

        seg_node = source.segmentation
        volume = source.volume
        if volume is None and seg_node is not None:
            volume = seg_node.GetNodeReference(slicer.vtkMRMLSegmentationNode.GetReferenceImageGeometryReferenceRole())
        label = f"{volume.GetName() if volume else '(no volume)'} + {seg_node.GetName() if seg_node else '(none)'}"
        summary = CaseSummary(case_id, label, None)
        if seg_node is None:
            problems.append(Problem("error", NO_USABLE_SEGMENTS, "no segmentation; the case is left out", case=case_id))
            return summary
        if volume is None or volume.GetImageData() is None:
            problems.append(Problem("error", VOLUME_MISSING, f"segmentation {seg_node.GetName()} has no CT volume "
                                    "(choose one, or set the segmentation's source geometry); the case is left out",
                                    case=case_id))
            return summary
        for node in (volume, seg_node):
            if node.GetParentTransformNode() is not None:
                problems.append(Problem("warning", TRANSFORMED, f"{node.GetName()} is under transform "
                                        f"{node.GetParentTransformNode().GetName()}; training uses the volume's own "
                                        "grid (harden the transform to train on the transformed data)", case=case_id))

        labelmap = self.scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", f"__{case_id}_export__")
        masks: dict[str, np.ndarray] = {}
        sources_of: dict[str, str] = {}
        segmentation = seg_node.GetSegmentation()
        if segmentation.GetNumberOfSegments() and not segmentation.ContainsRepresentation(BINARY_LABELMAP):
            # e.g. segments imported from models (closed surfaces): rasterise them on the CT's grid,
            # as the Segment Editor would, unless the segmentation already has a geometry
            geometry = slicer.vtkSegmentationConverter.GetReferenceImageGeometryParameterName()
            if not segmentation.GetConversionParameter(geometry):
                seg_node.SetReferenceImageGeometryParameterFromVolumeNode(volume)
            seg_node.CreateBinaryLabelmapRepresentation()
        for index in range(segmentation.GetNumberOfSegments()):
            segment_id = segmentation.GetNthSegmentID(index)
            segment = segmentation.GetSegment(segment_id)
            name = segment.GetName()
            key, mapped_by = self._map_segment(name, _tag(segment, TERMINOLOGY_TAG))
            internal = _internal_voxels(segment)
            mask = self._mask_on_volume(seg_node, segment_id, volume, labelmap) if internal else None
            voxels = int(mask.sum()) if mask is not None else 0
            used = False
            if key is None:
                near = ", ".join(c.name for c in self.vocabulary.closest(name, 3))
                problems.append(Problem("warning", UNMAPPED_SEGMENT, f"segment '{name}' matches no vocabulary class "
                                        f"by terminology or name (closest: {near}); it is left out", case_id, name))
            elif internal == 0:
                problems.append(Problem("warning", EMPTY_SEGMENT, f"segment '{name}' is empty; it is left out",
                                        case_id, name))
            elif voxels == 0:
                problems.append(Problem("warning", GEOMETRY_MISMATCH, f"segment '{name}' lies outside volume "
                                        f"{volume.GetName()} (drawn on another volume?); it is left out", case_id, name))
            else:
                inside = voxels * _voxel_volume(volume) / (internal * _oriented_voxel_volume(segment))
                if inside < options.min_inside_fraction:
                    problems.append(Problem("warning", GEOMETRY_MISMATCH, f"only {inside:.0%} of segment '{name}' "
                                            f"lies inside volume {volume.GetName()}; the rest is cut off",
                                            case_id, name))
                if key in masks:
                    problems.append(Problem("warning", DUPLICATE_CLASS, f"segments '{sources_of[key]}' and '{name}' "
                                            f"are both {key}; they are merged", case_id, name))
                    masks[key] |= mask
                    sources_of[key] += f", {name}"
                else:
                    masks[key], sources_of[key] = mask, name
                used = True
            summary.segments.append(SegmentSummary(segment_id, name, key, mapped_by, voxels, used))
        if not _same_lattice(seg_node, volume) and masks:
            problems.append(Problem("warning", GEOMETRY_MISMATCH, f"the segmentation's grid differs from volume "
                                    f"{volume.GetName()}'s; the segments were resampled onto the volume grid",
                                    case=case_id))
        if not masks:
            problems.append(Problem("error", NO_USABLE_SEGMENTS, "no segment maps to a vocabulary class with voxels "
                                    "inside the volume; the case is left out", case=case_id))
            return summary

        summary.image = f"cases/{case_id}.nrrd"
        summary.seg_nrrd = f"cases/{case_id}.seg.nrrd"
        self._write_volume(volume, work / summary.image, options.compress)
        self._write_segmentation(masks, sources_of, volume, labelmap, work / summary.seg_nrrd, options.compress)
        summary.classes = list(masks)
        summary.split = source.split or "pending"
        return summary

    def _map_segment(self, name: str, entry: str) -> tuple[str | None, str | None]:
        from mome.training.segment_mapping import segment_class_key

        if entry and (key := segment_class_key({"name": "", "terminology_entry": entry}, self.vocabulary)):
            return key, "terminology"
        if key := segment_class_key({"name": name}, self.vocabulary):
            return key, "name"
        return None, None

    def _mask_on_volume(self, seg_node, segment_id: str, volume, labelmap) -> np.ndarray:
        import slicer
        import vtk

        ids = vtk.vtkStringArray()
        ids.InsertNextValue(segment_id)
        if not slicer.vtkSlicerSegmentationsModuleLogic.ExportSegmentsToLabelmapNode(seg_node, ids, labelmap, volume):
            return np.zeros(tuple(reversed(volume.GetImageData().GetDimensions())), bool)
        return _array(labelmap) > 0

    # ------------------------------------------------------------------ writing
    def _write_volume(self, volume, path: Path, compress: bool) -> None:
        import slicer

        storage = slicer.vtkMRMLVolumeArchetypeStorageNode()
        self.scene.AddNode(storage)
        storage.SetFileName(str(path))
        storage.SetUseCompression(int(compress))
        if not storage.WriteData(volume):
            raise OSError(f"could not write {path}")

    def _write_segmentation(self, masks: dict[str, np.ndarray], sources_of: dict[str, str], volume, labelmap,
                            path: Path, compress: bool) -> None:
        import slicer
        import vtk
        from mome.vocabulary.terminology import slicer_terminology_entry

        out = self.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "__training_export__")
        out.SetReferenceImageGeometryParameterFromVolumeNode(volume)
        for key, mask in masks.items():
            cls = self.vocabulary.get(key)
            out.GetSegmentation().AddEmptySegment(key, cls.name, [c / 255.0 for c in cls.color])
            segment = out.GetSegmentation().GetSegment(key)
            segment.SetTag(TERMINOLOGY_TAG, slicer_terminology_entry(cls))
            segment.SetTag(SOURCE_SEGMENT_TAG, sources_of[key])
            _set_array(labelmap, mask, volume)
            ids = vtk.vtkStringArray()
            ids.InsertNextValue(key)
            if not slicer.vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(labelmap, out, ids):
                raise OSError(f"could not import the {key} mask into the export segmentation")
        storage = slicer.vtkMRMLSegmentationStorageNode()
        self.scene.AddNode(storage)
        storage.SetFileName(str(path))
        storage.SetUseCompression(int(compress))
        storage.SetCropToMinimumExtent(False)  # keep the volume's grid: no resampling in the engine
        if not storage.WriteData(out):
            raise OSError(f"could not write {path}")

    # ------------------------------------------------------------------ split and manifest
    @staticmethod
    def _assign_splits(cases: list[CaseSummary], options: BuildOptions) -> None:
        usable = [c for c in cases if c.split is not None]
        explicit = any(c.split != "pending" for c in usable)
        for c in usable:
            if c.split == "pending":
                c.split = "train"
        if explicit or options.holdout <= 0 or len(usable) < max(options.min_cases_for_holdout, options.holdout + 1):
            return
        # Hold out the latest cases whose classes all stay in some training case, so validation
        # never takes away a class's only training example; failing that, the latest cases.
        for _ in range(options.holdout):
            train = [c for c in usable if c.split == "train"]
            if len(train) <= 1:
                break
            candidates = [c for c in reversed(train)
                          if all(any(k in o.classes for o in train if o is not c) for k in c.classes)]
            (candidates[0] if candidates else train[-1]).split = "val"

    def _write_manifest(self, cases: list[CaseSummary], work: Path, options: BuildOptions,
                        problems: list[Problem]) -> Path | None:
        included = [c for c in cases if c.included]
        if not any(c.split == "train" for c in included):
            problems.append(Problem("error", NO_TRAINING_CASES, "no usable training case: pair each CT volume with "
                                    "a segmentation whose segments map to vocabulary classes"))
            return None
        manifest = {
            "name": options.name,
            "datasets": [{
                "name": options.dataset_name,
                "cases": [{"id": c.id, "image": c.image, "seg_nrrd": c.seg_nrrd, "split": c.split} for c in included],
            }],
        }
        path = work / "dataset.json"
        path.write_text(json.dumps(manifest, indent=2))
        try:  # the engine must read back exactly what was written
            from mome.training.manifest import ManifestError, load_manifest

            load_manifest(path)
        except ManifestError as exc:
            problems += [Problem("error", MANIFEST_INVALID, p) for p in exc.problems]
            return None
        return path


# ---------------------------------------------------------------------- helpers
def _tag(segment, name: str) -> str:
    import vtk

    value = vtk.mutable("")
    return str(value) if segment.GetTag(name, value) else ""


def _internal_voxels(segment) -> int:
    """Voxels of the segment in its own (possibly shared) binary labelmap."""
    from vtk.util.numpy_support import vtk_to_numpy

    image = segment.GetRepresentation(BINARY_LABELMAP)
    if image is None or image.GetPointData() is None or image.GetPointData().GetScalars() is None:
        return 0
    extent = image.GetExtent()
    if extent[1] < extent[0] or extent[3] < extent[2] or extent[5] < extent[4]:
        return 0
    values = vtk_to_numpy(image.GetPointData().GetScalars())
    return int(np.count_nonzero(values == segment.GetLabelValue()))


def _array(volume) -> np.ndarray:
    """The voxels of a volume node as a (k, j, i) array (a copy); slicer.util is not needed."""
    from vtk.util.numpy_support import vtk_to_numpy

    image = volume.GetImageData()
    return vtk_to_numpy(image.GetPointData().GetScalars()).reshape(tuple(reversed(image.GetDimensions()))).copy()


def _set_array(labelmap, mask: np.ndarray, reference) -> None:
    """Put a (k, j, i) mask into a label map node on ``reference``'s grid."""
    import vtk
    from vtk.util.numpy_support import numpy_to_vtk

    image = vtk.vtkImageData()
    image.SetDimensions(*reversed(mask.shape))
    scalars = numpy_to_vtk(np.ascontiguousarray(mask, dtype=np.uint8).ravel(), deep=True,
                           array_type=vtk.VTK_UNSIGNED_CHAR)
    image.GetPointData().SetScalars(scalars)
    labelmap.SetAndObserveImageData(image)
    labelmap.CopyOrientation(reference)


def _matrix(vtk_matrix) -> np.ndarray:
    return np.array([[vtk_matrix.GetElement(i, j) for j in range(4)] for i in range(4)])


def _ijk_to_ras(volume) -> np.ndarray:
    import vtk

    m = vtk.vtkMatrix4x4()
    volume.GetIJKToRASMatrix(m)
    return _matrix(m)


def _voxel_volume(volume) -> float:
    return float(np.prod(volume.GetSpacing()))


def _oriented_voxel_volume(segment) -> float:
    return float(np.prod(segment.GetRepresentation(BINARY_LABELMAP).GetSpacing()))


def _same_lattice(seg_node, volume, tol: float = 1e-3) -> bool:
    """Whether every segment's labelmap voxels coincide with the volume's (same axes and spacing,
    origin shifted by whole voxels); only then is the export a pure copy."""
    import vtk

    vol = _ijk_to_ras(volume)
    inv = np.linalg.inv(vol)
    segmentation = seg_node.GetSegmentation()
    for index in range(segmentation.GetNumberOfSegments()):
        image = segmentation.GetNthSegment(index).GetRepresentation(BINARY_LABELMAP)
        if image is None:
            continue
        m = vtk.vtkMatrix4x4()
        image.GetImageToWorldMatrix(m)
        relative = inv @ _matrix(m)
        shift = relative[:3, 3]
        if not (np.allclose(relative[:3, :3], np.eye(3), atol=tol) and np.allclose(shift, np.round(shift), atol=tol)):
            return False
    return True


def _default_case_id(source: CaseSource) -> str:
    node = source.volume if source.volume is not None else source.segmentation
    return node.GetName() if node is not None else "case"


def _unique_id(name: str, used: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "case"
    candidate, n = base, 2
    while candidate in used:
        candidate, n = f"{base}_{n}", n + 1
    used.add(candidate)
    return candidate
