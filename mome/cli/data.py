"""``mome data``: import public dataset layouts into a manifest, check a manifest, list the presets."""

from __future__ import annotations

import argparse
import json
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="import dataset folders (MSD, nnU-Net, TotalSegmentator, presets) and check manifests")
    actions = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")

    imp = actions.add_parser("import", help="write (or extend) a manifest from a dataset folder")
    imp.add_argument("format", metavar="FORMAT",
                     help="msd | nnunet | totalsegmentator | pairs, or a dataset preset (its own layout): "
                          "see `mome data presets`")
    imp.add_argument("folder", metavar="DIR", help="the dataset's folder")
    imp.add_argument("-o", "--output", required=True, help="manifest file to write (.yaml or .json)")
    imp.add_argument("--append", action="store_true", help="add the dataset to an existing manifest")
    imp.add_argument("--name", help="dataset name in the manifest (default: from the folder or preset)")
    imp.add_argument("--preset", help="label convention of a known dataset (overrides dataset.json's names)")
    imp.add_argument("--map", action="append", default=[], metavar="NAME=KEY",
                     help="map a source label name to a vocabulary key, or to null (repeatable)")
    imp.add_argument("--val-fraction", type=float, default=0.1,
                     help="share of training cases put in val, chosen by id (default 0.1; ignored where the "
                          "dataset has its own val split)")
    imp.add_argument("--images", help="pairs: image glob below DIR, its last '*' the case id")
    imp.add_argument("--labels", help="pairs: label path relative to the image's folder, with {id}")
    imp.set_defaults(func=run_import)

    chk = actions.add_parser("check", help="per-class case counts, problems and unmapped labels of a manifest")
    chk.add_argument("manifest")
    chk.add_argument("--json", action="store_true", help="the report as JSON")
    chk.set_defaults(func=run_check)

    pre = actions.add_parser("presets", help="the known datasets' label conventions and their sources")
    pre.add_argument("--json", action="store_true")
    pre.set_defaults(func=run_presets)


def run_import(args: argparse.Namespace) -> int:
    from ..data import import_dataset, parse_overrides, write_manifest

    try:
        dataset = import_dataset(args.format, args.folder, name=args.name, preset=args.preset,
                                 overrides=parse_overrides(args.map), val_fraction=args.val_fraction,
                                 images=args.images, labels=args.labels)
        path = write_manifest([dataset], args.output, append=args.append)
    except (ValueError, FileNotFoundError, FileExistsError) as exc:
        print(f"mome: error: {exc}", file=sys.stderr)
        return 2
    splits = {s: sum(c["split"] == s for c in dataset.cases) for s in ("train", "val", "test")}
    mapped = sorted({k for k in dataset.label_map.values() if k} | {k for c in dataset.cases for k in c.get("masks", {})})
    print(f"{path}: dataset {dataset.name}, {len(dataset.cases)} cases "
          f"({', '.join(f'{n} {s}' for s, n in splits.items() if n)}), {len(mapped)} classes: {', '.join(mapped)}")
    for note in dataset.notes:
        print(f"  note: {note}")
    if dataset.unmapped:
        print(f"  mapped to no class (background for the others; map them with --map NAME=KEY): "
              f"{', '.join(dataset.unmapped)}")
    print(f"check it with: mome data check {path}")
    return 0


def run_check(args: argparse.Namespace) -> int:
    from ..data.check import check_manifest, format_report
    from ..training.manifest import ManifestError, load_manifest
    from ..vocabulary import load_vocabulary

    try:
        manifest = load_manifest(args.manifest)
    except ManifestError as exc:  # structural problems: the manifest cannot even be read
        print(json.dumps({"manifest": args.manifest, "problems": exc.problems}, indent=2) if args.json else
              f"{args.manifest} cannot be read:\n" + "\n".join(f"  - {p}" for p in exc.problems))
        return 1
    report = check_manifest(manifest, load_vocabulary())
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 1 if report["problems"] else 0


def run_presets(args: argparse.Namespace) -> int:
    from ..data import PRESETS

    rows = []
    for p in PRESETS.values():
        layout = p.layout if isinstance(p.layout, str) or p.layout is None else {"images": list(p.layout.images),
                                                                                  "labels": list(p.layout.labels)}
        rows.append({"preset": p.key, "title": p.title, "labels": {v: {"name": n, "class": k} for v, (n, k) in
                                                                   p.labels.items()},
                     "source": p.source, "layout": layout, "note": p.note})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        labels = ", ".join(f"{v} {d['name']}→{d['class'] or '(none)'}" for v, d in r["labels"].items())
        print(f"{r['preset']}: {r['title']}\n  labels: {labels}\n  source: {r['source']}")
        if r["note"]:
            print(f"  layout: {r['note']}")
    return 0
