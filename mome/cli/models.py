"""``mome models``: the models MoME can use — list, download, import, verify, activate, roll back,
export and remove.

Installed models live in ``$MOME_HOME/models`` (default ``~/.cache/mome/models``). The *active*
model is the one used when no ``--model`` is given; rollback re-activates the previous one.
Downloads happen only here, only after you agree (``--yes``, or a question on a terminal), and
are verified against the SHA-256 in the registry before anything is installed. Offline: fetch the
.zip another way and ``mome models import`` it.

Exit codes: 0 success, 2 a problem to fix (unknown model, failed check, no consent), 130 cancelled.
"""

from __future__ import annotations

import argparse
import json
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ._common import add_progress_argument, description, download_consent


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("models", help="list, download, import, verify, activate or remove models",
                              description=description(__doc__),
                              epilog="examples: mome models list; mome models import my-model.zip --activate")
    sub = p.add_subparsers(dest="models_command", required=True, metavar="ACTION")

    a = sub.add_parser("list", help="installed models (active marked *) and models available to download")
    a.add_argument("--json", action="store_true", help="machine-readable output")
    a.set_defaults(func=_reporting(_list))

    a = sub.add_parser("download", help="download a model from the registry (asks first)")
    a.add_argument("model", metavar="NAME[@VERSION]")
    a.add_argument("--yes", "-y", action="store_true", help="agree to the download without being asked")
    a.add_argument("--activate", action="store_true", help="make it the active model")
    add_progress_argument(a)
    a.set_defaults(func=_reporting(_download))

    a = sub.add_parser("import", help="install a model package folder or .zip (offline installs, fine-tuned models)")
    a.add_argument("source", type=Path, metavar="FILE_OR_FOLDER")
    a.add_argument("--activate", action="store_true", help="make it the active model")
    a.set_defaults(func=_reporting(_import))

    a = sub.add_parser("verify", help="check model files against their SHA-256 checksums (default: all installed)")
    a.add_argument("model", nargs="?", metavar="NAME[@VERSION]|PATH")
    a.set_defaults(func=_reporting(_verify))

    a = sub.add_parser("activate", help="use this model when no --model is given")
    a.add_argument("model", metavar="NAME[@VERSION]")
    a.set_defaults(func=_reporting(_activate))

    a = sub.add_parser("rollback", help="re-activate the previously active model")
    a.set_defaults(func=_reporting(_rollback))

    a = sub.add_parser("export", help="write an installed model as a .zip (to share or archive it)")
    a.add_argument("model", metavar="NAME[@VERSION]")
    a.add_argument("output", type=Path, metavar="OUT.zip")
    a.add_argument("--overwrite", action="store_true", help="replace an existing OUT.zip")
    a.set_defaults(func=_reporting(_export))

    a = sub.add_parser("evidence", help="per-structure accuracy figures of a model and the status they give",
                       description="The held-out (and training-data) Dice figures a model package records, per "
                                   "structure, and the status each gets: validated, weak, not validated, not learned.")
    a.add_argument("model", nargs="?", metavar="NAME[@VERSION]|PATH", help="default: the active model, else mome-mini")
    a.add_argument("--markdown", action="store_true", help="the README's summary list instead of the table")
    a.add_argument("--json", action="store_true", help="machine-readable output")
    a.set_defaults(func=_reporting(_evidence))

    a = sub.add_parser("add-evidence", help="record a 'mome evaluate' result in a package folder you prepare",
                       description="Add the per-class Dice of a 'mome evaluate' JSON to a model package folder "
                                   "(its model.json and checksums are rewritten). Installed models never change: "
                                   "add evidence before 'mome models import'.")
    a.add_argument("package", type=Path, metavar="PACKAGE_FOLDER")
    a.add_argument("evaluation", type=Path, metavar="EVALUATION.json", help="written by 'mome evaluate --out'")
    a.add_argument("--kind", required=True, choices=("held_out", "same_patient", "training"),
                   help="held_out: patients the model never saw; same_patient: an unseen part of a training "
                        "patient; training: data it was trained on")
    a.add_argument("--data", required=True, help="what was measured, e.g. \"ircad_1.1 (3D-IRCADb-01 patient 1.1)\"")
    a.add_argument("--source", help="how it was measured (default: 'mome evaluate (split S)')")
    a.set_defaults(func=_reporting(_add_evidence))

    a = sub.add_parser("remove", help="delete an installed model version (not the active one)")
    a.add_argument("model", metavar="NAME@VERSION")
    a.set_defaults(func=_reporting(_remove))


def _reporting(action: Callable[[argparse.Namespace, Any], int]) -> Callable[[argparse.Namespace], int]:
    """Run ``action`` with the user's model store; problems the user can fix become one line on
    stderr and exit code 2 (anything else is a bug and keeps its traceback)."""

    def run(args: argparse.Namespace) -> int:
        from ..hub import ModelStore
        from ..package import PackageIntegrityError

        try:
            return action(args, ModelStore())
        except (OSError, ValueError, PackageIntegrityError, zipfile.BadZipFile) as exc:
            text = str(exc).strip()
            message = text.splitlines()[0] if text else type(exc).__name__
            print(f"mome models {args.models_command}: error: {message}", file=sys.stderr)
            return 2

    return run


# ---------------------------------------------------------------------- list
def _list(args: argparse.Namespace, store: Any) -> int:
    from ..hub import bundled_path, load_registry

    installed = store.installed()
    registry = load_registry()
    installed_specs = {m.spec for m in installed}
    bundled = {e.spec: bundled_path(e.name, None, registry) for e in registry if e.bundled}
    absent = [e for e in registry if e.spec not in installed_specs and not bundled.get(e.spec)]
    available = [e for e in absent if e.downloadable]
    missing = [e for e in absent if not e.downloadable]  # bundled-only entries whose files are gone
    default = _default_model()

    if args.json:
        print(json.dumps({
            "store": str(store.root),
            "default": str(default) if default else None,
            "installed": [_model_json(m) for m in installed],
            "registry": [{"name": e.name, "version": e.version, "url": e.url, "size": e.size, "sha256": e.sha256,
                          "description": e.description, "license": e.license, "classes": list(e.classes),
                          "installed": e.spec in installed_specs,
                          "bundled": str(bundled[e.spec]) if bundled.get(e.spec) else None}
                         for e in registry],
        }, indent=2))
        return 0

    print(f"Installed in {store.root}:")
    rows = [("*" if m.active else " ", m.name, m.version, f"{len(m.classes)} classes",
             f"from {m.base_model}" if m.base_model else "", m.description) for m in installed]
    print(_table(rows) if rows else "  (none)")
    present = [e for e in registry if bundled.get(e.spec)]
    if present:
        print("Bundled with MoME:")
        print(_table([(" ", e.name, e.version, e.license, e.description) for e in present]))
    if available:
        print("Available to download (mome models download NAME):")
        print(_table([(" ", e.name, e.version, e.size_text(), e.license, e.description) for e in available]))
    if missing:
        print("Bundled with MoME but missing (reinstall MoME, or import the package):")
        print(_table([(" ", e.name, e.version, e.description) for e in missing]))
    active = next((m for m in installed if m.active), None)
    if active:
        print(f"* = active: used when no --model is given ({active.spec})")
    elif default:
        print(f"No active model: {default} is used when no --model is given")
    else:
        print("No active model and the default model is not installed")
    return 0


def _default_model() -> Path | None:
    from ..hub import resolve_model
    from ..hub import ModelNotFoundError

    try:
        return resolve_model(None)
    except ModelNotFoundError:
        return None


def _model_json(m: Any) -> dict[str, Any]:
    return {"name": m.name, "version": m.version, "path": str(m.path), "active": m.active,
            "description": m.description, "classes": list(m.classes), "metrics": m.metrics,
            "base_model": m.base_model}


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


# ---------------------------------------------------------------------- download / import
def _download(args: argparse.Namespace, store: Any) -> int:
    from ..hub import download_model, find_entry, load_registry, parse_spec
    from ..hub import ModelNotFoundError
    from ..progress import JsonLinesProgress, make_progress

    name, version = parse_spec(args.model)
    registry = load_registry()
    entry = find_entry(registry, name, version)
    if entry is None:
        known = ", ".join(sorted({e.spec for e in registry})) or "none"
        raise ModelNotFoundError(f"the registry does not list {args.model}; known models: {known}")
    consent = download_consent(args.yes)
    progress = make_progress(args.progress)
    model = download_model(entry, store, consent, progress, activate=args.activate)
    progress.done(installed=model.spec, path=str(model.path), active=model.active)
    if not isinstance(progress, JsonLinesProgress):
        print(f"Installed {model.spec} in {model.path}" + (" (active)" if model.active else ""))
    return 0


def _import(args: argparse.Namespace, store: Any) -> int:
    model = store.install(args.source, activate=args.activate)
    print(f"Imported {model.spec} into {model.path}" + (" (active)" if model.active else ""))
    return 0


# ---------------------------------------------------------------------- verify
def _verify(args: argparse.Namespace, store: Any) -> int:
    from ..hub import resolve_model, verify_package
    from ..package import PackageFormatError, PackageIntegrityError

    if args.model:
        targets = [(args.model, resolve_model(args.model, store))]
    else:
        targets = [(m.spec, m.path) for m in store.installed()]
        default = _default_model()
        if default is not None and default not in [path for _, path in targets]:
            targets.append((f"{default.name} (default)", default))
        if not targets:
            raise FileNotFoundError(f"no models to verify: none installed in {store.root} and none bundled")
    bad = 0
    for label, path in targets:
        try:
            manifest = verify_package(path)
            print(f"OK   {label}: {len(manifest)} files match their checksums ({path})")
        except (PackageIntegrityError, PackageFormatError, OSError) as exc:
            bad += 1
            print(f"BAD  {label}: {exc}")
    if bad:
        print(f"mome models verify: error: {bad} of {len(targets)} model(s) failed the check; "
              "re-download or re-import them", file=sys.stderr)
        return 2
    return 0


# ---------------------------------------------------------------------- activate / rollback / export / remove
def _activate(args: argparse.Namespace, store: Any) -> int:
    from ..hub import bundled_path, load_registry, parse_spec
    from ..hub import ModelNotFoundError

    name, version = parse_spec(args.model)
    before = store.active()
    try:
        model = store.get(name, version)
        model = store.activate(model.name, model.version)
    except ModelNotFoundError:
        # A bundled model is not in the store yet: copy it in (local, verified) so it can be active.
        bundled = bundled_path(name, version, load_registry())
        if bundled is None:
            raise
        model = store.install(bundled, activate=True)
    print(f"Active model: {model.spec}" + (f" (was {before.spec})" if before and before.spec != model.spec else ""))
    return 0


def _rollback(args: argparse.Namespace, store: Any) -> int:
    before = store.active()
    model = store.rollback()
    print(f"Active model: {model.spec}" + (f" (was {before.spec})" if before else ""))
    return 0


def _export(args: argparse.Namespace, store: Any) -> int:
    from ..hub import parse_spec

    model = store.get(*parse_spec(args.model))
    path = store.export(model.name, model.version, args.output, overwrite=args.overwrite)
    print(f"Exported {model.spec} to {path}")
    return 0


def _evidence(args: argparse.Namespace, store: Any) -> int:
    from ..hub import resolve_model
    from ..package import read_package_json
    from ..package.evidence import class_statuses, read_evidence, summary_markdown

    meta = read_package_json(resolve_model(args.model, store))
    if args.markdown:
        print(summary_markdown(meta))
        return 0
    statuses = class_statuses(meta)
    if args.json:
        print(json.dumps({"model": f"{meta['name']} {meta['version']}",
                          "classes": {k: s.to_dict() for k, s in statuses.items()},
                          "evidence": [s.to_dict() for s in read_evidence(meta)]}, indent=2))
        return 0
    names = {c["key"]: c.get("name", c["key"]) for c in meta.get("classes", [])}
    print(f"{meta['name']} {meta['version']}: what its package records about each structure")
    print(_table([(names[k], s.label, s.reason) for k, s in statuses.items()]))
    history = [s for s in read_evidence(meta) if s.model_version != str(meta["version"])]
    for study in history:
        print(f"  (also recorded, for version {study.model_version}: {study.kind} on {study.data})")
    return 0


def _add_evidence(args: argparse.Namespace, store: Any) -> int:
    from ..package.evidence import study_from_evaluation, write_evidence

    folder = args.package.expanduser().resolve()
    if folder.is_relative_to(store.root.expanduser().resolve()):
        raise ValueError(f"{args.package} is installed in the model store, and installed models never change; "
                         "add evidence to the package folder you built, then import it")
    if not folder.is_dir():
        raise FileNotFoundError(f"{args.package} is not a model package folder")
    try:
        evaluation = json.loads(args.evaluation.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{args.evaluation} is not valid JSON ({exc})") from exc
    study = study_from_evaluation(evaluation, args.kind, args.data, args.source or "")
    cases = [row.get("case", "") for row in evaluation.get("per_case", [])]
    write_evidence(folder, study, cases)
    print(f"Recorded {len(study.classes)} class figure(s) ({args.kind}, {args.data}) for version "
          f"{study.model_version} in {folder}")
    return 0


def _remove(args: argparse.Namespace, store: Any) -> int:
    from ..hub import parse_spec

    name, version = parse_spec(args.model)
    if version is None:
        versions = [m.version for m in store.installed() if m.name == name]
        raise ValueError(f"say which version to remove: {name}@VERSION (installed: {', '.join(versions) or 'none'})")
    store.remove(name, version)
    print(f"Removed {name}@{version}")
    return 0
