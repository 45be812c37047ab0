"""``mome segment``: segment the structures named in ``--prompts`` in one CT.

The extension of ``--output`` picks the format: ``.seg.nrrd`` is a Slicer segmentation (segments
may overlap; names, colours, terminology and the algorithm are recorded), ``.nrrd``/``.nii``/
``.nii.gz``/``.mha`` a label map with values 1..K in prompt order (a later prompt wins where two
overlap); a label map gets its legend beside it (``.ctbl`` for Slicer, ``.itksnap.txt`` for
ITK-SNAP). Every output lies on exactly the input's voxel grid and is written atomically: all
outputs are staged under temporary names and moved into place only once every one of them is
complete, so Ctrl-C or SIGTERM leaves no partial file behind.

Everything that can be checked is checked before the work: the outputs (names, existing files,
writable folders), the prompts, what the model can be trusted with (structures it was never trained
on, or has not learned, are refused unless you opt in; see ``mome.inference.reliability``), and
whether the input is plausibly a complete CT in Hounsfield units (``mome.io.plausibility``).

Exit codes: 0 success, 2 a problem with the request (input, prompts, model, outputs), 130 cancelled.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from ..progress import JsonLinesProgress, Progress
from ._common import add_progress_argument, description, run_reporting_errors

log = logging.getLogger("mome.segment")

SEGMENTATION_SUFFIXES = (".seg.nrrd",)
#: Segment tags (``.seg.nrrd``) with each structure's reliability and the figures behind it.
RELIABILITY_TAG = "MoME.Reliability"
EVIDENCE_TAG = "MoME.Evidence"


class RequestError(ValueError):
    """A problem with what the user asked for; reported in one line with exit code 2."""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "segment",
        help="segment named structures in a CT",
        description=description(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='example: mome segment ct.nii.gz --prompts "liver, stomach, aorta" --output out.seg.nrrd '
               '(what the model segments, and how reliably: mome classes)',
    )
    p.add_argument("input", help="CT volume (NIfTI, NRRD, MHA) or DICOM series folder/file")
    p.add_argument("--prompts", required=True,
                   help='structures to segment, separated by commas or semicolons, e.g. "liver, stomach; aorta"')
    p.add_argument("--output", "-o", required=True, type=Path,
                   help="segmentation file: .seg.nrrd (Slicer) or .nrrd/.nii/.nii.gz/.mha (label map)")
    p.add_argument("--labelmap", type=Path, help="also write a label map (.nrrd/.nii/.nii.gz/.mha)")
    p.add_argument("--dicom-seg", type=Path, help="also write a DICOM-SEG (.dcm); the input must be a DICOM series")
    p.add_argument("--stats", type=Path, help="also write per-structure volume and HU statistics (.csv or .json)")
    p.add_argument("--preview", type=Path, help="also write a PNG preview with the masks overlaid")
    p.add_argument("--model", default=None,
                   help="installed model NAME[@VERSION] or package folder/.zip (default: the active model, else mome-mini)")
    p.add_argument("--fast", action="store_true",
                   help="quicker, less precise: the package's coarser grid (fast_spacing) and windows overlapping by "
                        "a quarter instead of half (as the model card's figures were measured)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="compute device (default: auto)")
    p.add_argument("--overlap", type=float, default=None,
                   help="sliding-window overlap in [0, 1) (default 0.5; 0.25 with --fast)")
    p.add_argument("--threshold", type=float, default=0.5, help="probability threshold (default 0.5)")
    p.add_argument("--sw-batch-size", type=int, default=None, help="windows per forward pass (default: from free memory)")
    p.add_argument("--no-postprocess", action="store_true", help="switch off all anatomical clean-up")
    p.add_argument("--no-largest-component", action="store_true", help="keep every piece of organs")
    p.add_argument("--no-lesion-in-organ", action="store_true", help="keep tumour/cyst voxels outside their organ")
    p.add_argument("--no-lung-split", action="store_true", help="do not reassign lung voxels by body side")
    p.add_argument("--allow-zero-shot", "--allow-free-text", dest="allow_zero_shot", action="store_true",
                   help="also segment structures the model was never trained on (including names the vocabulary "
                        "does not know), guessed from their name alone; marked 'zero-shot' in every output")
    p.add_argument("--allow-not-learned", action="store_true",
                   help="also segment structures the model's own figures say it has not learned (Dice < 0.1); "
                        "marked 'not learned' in every output")
    p.add_argument("--skip-input-check", action="store_true",
                   help="segment even when the input does not look like CT in Hounsfield units (no air, no soft "
                        "tissue, blank); for experts with unusual data. Damaged files are always refused")
    add_progress_argument(p)
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return run_reporting_errors(lambda progress: _segment(args, progress), args.progress, "mome segment",
                                cancelled_message="cancelled; no partial output was left behind")


def _segment(args: argparse.Namespace, progress: Progress) -> int:
    started = time.perf_counter()
    outputs = _planned_outputs(args)
    _check_outputs(outputs, args.overwrite)

    from ..vocabulary import load_vocabulary, parse_prompts

    if args.overlap is not None and not 0 <= args.overlap < 1:
        raise RequestError(f"--overlap must be in [0, 1), got {args.overlap}")
    if not 0 < args.threshold < 1:
        raise RequestError(f"--threshold must be between 0 and 1, got {args.threshold}")

    # Checked before torch and the network are imported, so a misspelt name is reported at once.
    parsed = parse_prompts(args.prompts, load_vocabulary(), allow_free_text=args.allow_zero_shot)
    warnings = list(parsed.warnings)

    from ..hub import resolve_model
    from ..inference.reliability import assess, refuse_unreliable
    from ..io.reading import read_ct
    from ..package import read_package_json

    model_path = resolve_model(args.model)  # None: the active model, else the bundled default
    meta = read_package_json(model_path)  # model.json only: the refusal needs no weights
    reliability = assess(parsed.classes, meta)
    refuse_unreliable(reliability, meta, args.allow_zero_shot, args.allow_not_learned)

    # The CT is read while torch and MONAI are imported (cold start, issue 13): zlib, SimpleITK and
    # numpy's reductions release the GIL, so reading and importing share the two cores of a laptop.
    progress.update("load", 0.0, "reading the CT")
    reading = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mome-read").submit(read_ct, args.input)
    from ..runtime import import_monai_lean

    import_monai_lean()  # seconds less start-up per click: MONAI without its optional packages (mome/runtime.py)
    loaded = reading.result()  # its errors (a truncated file, not a CT) are raised here
    warnings += loaded.warnings
    if "dicom_seg" in outputs and not loaded.dicom_files:
        raise RequestError(
            f"--dicom-seg needs a DICOM series as input (a folder of .dcm files), but {args.input} is a "
            "volume file without DICOM headers to reference; write .seg.nrrd or a label map instead"
        )
    input_check = loaded.input_check
    if not input_check.ok:
        if not (args.skip_input_check and input_check.overridable):
            input_check.raise_if_failed()
        warnings.append(f"input check skipped on request (--skip-input-check): {input_check.message.split('. ')[0]}")

    from ..inference import PostprocessOptions, Segmenter
    from ..package import ModelPackage

    progress.update("load", 0.0, "loading the model")
    clock = time.perf_counter()
    package = ModelPackage.load(model_path)
    postprocess = PostprocessOptions(
        enabled=not args.no_postprocess,
        largest_component=not args.no_largest_component,
        lesions_in_organ=not args.no_lesion_in_organ,
        lung_split=not args.no_lung_split,
        threshold=args.threshold,
    )
    segmenter = Segmenter(package, device=args.device, fast=args.fast, overlap=args.overlap,
                          postprocess=postprocess, sw_batch_size=args.sw_batch_size)
    load_seconds = time.perf_counter() - clock

    result = segmenter.segment(loaded.image, parsed.classes, progress=progress)
    # The engine drops repeats; keep one reliability per segmented class, in its order.
    by_key = {r.key: r for r in reliability}
    reliability = [by_key[c.key] for c in result.classes]
    warnings += result.warnings
    for warning in warnings:
        log.warning(warning)

    clock = time.perf_counter()
    algorithm = f"MoME {package.info.name} {package.info.version}"
    writers = _writers(outputs, result, loaded, package, algorithm, reliability)
    with ExitStack() as staging:
        from ..io.atomic import atomic_write

        # The one staging of the outputs: each writer fills a temporary file, and leaving the stack
        # moves every one onto its name; an error or Ctrl-C before that removes all of them.
        for kind, path in outputs.items():
            progress.update("write", 0.0, f"writing {path.name}")
            writers[kind](staging.enter_context(atomic_write(path)))
    timings = {"load_model": round(load_seconds, 3), **result.timings,
               "write": round(time.perf_counter() - clock, 3), "total": round(time.perf_counter() - started, 3)}

    summary = {
        "outputs": {kind: str(path) for kind, path in outputs.items()},
        "classes": [
            {"key": c.key, "name": c.name, "label_value": i + 1, "voxels": int(m.sum()), "trained": c.trained,
             **r.to_dict()}
            for i, (c, m, r) in enumerate(zip(result.classes, result.masks, reliability))
        ],
        "model": {"name": package.info.name, "version": package.info.version},
        "device": result.device_used,
        "input_check": input_check.to_dict(),
        "timings": timings,
        "warnings": warnings,
        "postprocess_notes": result.notes,
    }
    progress.done(**summary)
    if not isinstance(progress, JsonLinesProgress):
        _print_summary(summary, algorithm)
    return 0


def _print_summary(summary: dict[str, Any], algorithm: str) -> None:
    classes = summary["classes"]
    print(f"Segmented {len(classes)} structure(s) with {algorithm} on {summary['device']} in "
          f"{summary['timings']['total']:.1f} s; wrote {', '.join(summary['outputs'].values())}")
    empty = [c["name"] for c in classes if c["voxels"] == 0]
    if empty:
        print(f"Empty (nothing found): {', '.join(empty)}")
    doubtful = [c for c in classes if c["status"] != "validated"]
    if doubtful:
        print("Not validated as accurate (held-out figures in the model package: `mome classes`):")
        for c in doubtful:
            print(f"  {c['name']}: {c['status_label']} ({c['evidence']})")


def _planned_outputs(args: argparse.Namespace) -> dict[str, Path]:
    """kind → path of every requested output, checking each extension."""
    # Imported here, not at the top: ``mome --help`` and a misspelt prompt need no SimpleITK.
    from ..io.atomic import full_suffix
    from ..io.labelmap import LABELMAP_SUFFIXES
    from ..io.statistics import STATISTICS_SUFFIXES

    def suffix(path: Path) -> str:
        return full_suffix(path).lower()

    outputs: dict[str, Path] = {}
    out_suffix = suffix(args.output)
    if out_suffix in SEGMENTATION_SUFFIXES:
        outputs["segmentation"] = args.output
    elif out_suffix in LABELMAP_SUFFIXES:
        outputs["labelmap"] = args.output
    else:
        raise RequestError(
            f"--output {args.output} has an unsupported extension; use .seg.nrrd (Slicer segmentation) "
            f"or one of {', '.join(LABELMAP_SUFFIXES)} (label map)"
        )
    if args.labelmap is not None:
        if suffix(args.labelmap) not in LABELMAP_SUFFIXES:
            raise RequestError(f"--labelmap {args.labelmap} must end with one of {', '.join(LABELMAP_SUFFIXES)}")
        if "labelmap" in outputs:
            raise RequestError("--output is already a label map; give --labelmap only with a .seg.nrrd --output")
        outputs["labelmap"] = args.labelmap
    if "labelmap" in outputs:
        from ..io.legend import legend_paths

        outputs.update(legend_paths(outputs["labelmap"]))  # which value is which structure
    if args.dicom_seg is not None:
        outputs["dicom_seg"] = args.dicom_seg
    if args.stats is not None:
        if suffix(args.stats) not in STATISTICS_SUFFIXES:
            raise RequestError(f"--stats {args.stats} must end with .csv or .json")
        outputs["stats"] = args.stats
    if args.preview is not None:
        if suffix(args.preview) != ".png":
            raise RequestError(f"--preview {args.preview} must end with .png")
        outputs["preview"] = args.preview
    resolved = [p.resolve() for p in outputs.values()]
    if len(set(resolved)) != len(resolved):
        raise RequestError("two outputs have the same path; give each output its own file name")
    return outputs


def _check_outputs(outputs: dict[str, Path], overwrite: bool) -> None:
    """Before any work: no folder in the way, nothing replaced without --overwrite, every folder
    writable (probed with a temporary file, so read-only mounts and permissions both show)."""
    for path in outputs.values():
        if path.is_dir():
            raise RequestError(f"{path} is a folder; give a file name")
    existing = [str(p) for p in outputs.values() if p.exists()]
    if existing and not overwrite:
        raise RequestError(f"{', '.join(existing)} already exist(s); pass --overwrite to replace, or choose another name")
    for folder in dict.fromkeys(p.parent for p in outputs.values()):
        _check_writable(folder)


def _check_writable(folder: Path) -> None:
    import tempfile

    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent  # the folder is created at write time; its nearest ancestor must allow it
    if not existing.is_dir():
        raise RequestError(f"cannot write into {folder}: {existing} is a file, not a folder; "
                           "choose another output path")
    try:
        with tempfile.TemporaryFile(dir=existing, prefix=".mome-write-test-"):
            pass
    except OSError as exc:
        raise RequestError(f"cannot write into {folder}: {exc.strerror or exc} ({existing}); "
                           "choose a folder you can write to") from exc


def _writers(outputs: dict[str, Path], result: Any, loaded: Any, package: Any, algorithm: str,
             reliability: list[Any]) -> dict[str, Callable[[Path], Any]]:
    """kind → function writing that output to the (temporary) path it is given."""
    from dataclasses import replace

    from ..io.labelmap import write_labelmap
    from ..io.legend import labelmap_overlaps, overlap_lines, write_itksnap_labels, write_slicer_color_table
    from ..io.preview import render_preview
    from ..io.seg_nrrd import write_seg_nrrd
    from ..io.statistics import structure_statistics, write_statistics

    image, masks = loaded.image, result.masks
    # Not-learned and zero-shot structures (opted in) say so in their name wherever a name is shown.
    segments = [replace(d, name=r.display_name) for d, r in zip(result.descriptors, reliability)]
    tags = [{RELIABILITY_TAG: r.label, EVIDENCE_TAG: r.reason} for r in reliability]
    annotations = [{"name": r.name, "status": r.label, "evidence": r.reason} for r in reliability]
    notes = overlap_lines(segments, labelmap_overlaps(masks)) if "labelmap" in outputs else []
    labelmap_name = outputs["labelmap"].name if "labelmap" in outputs else ""
    writers: dict[str, Callable[[Path], Any]] = {
        "segmentation": lambda path: write_seg_nrrd(
            path, masks, image, segments, algorithm, _terminology_entries(result.classes), tags
        ),
        "labelmap": lambda path: write_labelmap(path, masks, image),
        "legend_slicer": lambda path: write_slicer_color_table(path, segments, notes, labelmap_name),
        "legend_itksnap": lambda path: write_itksnap_labels(path, segments, notes, labelmap_name),
        "stats": lambda path: write_statistics(path, structure_statistics(masks, image, segments, annotations)),
        "preview": lambda path: render_preview(path, image, masks, segments),
    }
    if "dicom_seg" in outputs:
        from ..io.dicom_seg import write_dicom_seg  # pydicom and highdicom (0.3 s): only when asked for

        regions = {d.key: d.anatomic_region for d in segments if d.anatomic_region is not None}
        writers["dicom_seg"] = lambda path: write_dicom_seg(
            path, masks, image, loaded.dicom_files, segments, algorithm_name=f"MoME {package.info.name}",
            algorithm_version=package.info.version, anatomic_regions=regions,
        )
    return writers


def _terminology_entries(classes: list[Any]) -> list[str]:
    """Slicer terminology per segment: MoME's own context for vocabulary classes (it lists every
    vocabulary code), Slicer's general anatomy context for classes known only from the model package."""
    from ..vocabulary import GENERAL_ANATOMY_CONTEXT_NAME, StructureClass, slicer_terminology_entry

    return [
        slicer_terminology_entry(c.source) if isinstance(c.source, StructureClass)
        else slicer_terminology_entry(c.descriptor, GENERAL_ANATOMY_CONTEXT_NAME)
        for c in classes
    ]
