"""``mome sample [NAME]``: sample CTs to try MoME on a fresh install, shipped with it or downloaded on request.

``mome sample`` (or ``--list``) lists them; ``mome sample NAME`` prints the CT's path, so that
``mome segment "$(mome sample example_ct)" ...`` works anywhere; ``--copy DEST`` copies it.
A *remote* sample (one that may not ship with MoME, e.g. an OpenKBP head-and-neck patient) is
fetched only by ``mome sample NAME --download``, after you agree (``--yes``, or a question on a
terminal); it comes with reference masks (``--masks``) and a manifest for ``mome evaluate``
(``--manifest``).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from ._common import add_progress_argument, description, download_consent, run_reporting_errors


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("sample", help="list the sample CTs (shipped or downloadable), or print the path of one",
                              description=description(__doc__),
                              epilog="examples: mome sample example_ct; "
                                     "mome sample openkbp_test_pt_247 --download; "
                                     "mome sample openkbp_test_pt_247 --masks")
    p.add_argument("name", nargs="?", help="sample name (see the list); prints its CT's path")
    p.add_argument("--list", action="store_true", help="list the samples with their size, licence and source")
    p.add_argument("--download", action="store_true",
                   help="download a remote sample (asks first; see --yes), convert it into the cache, print its path")
    p.add_argument("--yes", "-y", action="store_true", help="agree to the download without being asked")
    p.add_argument("--masks", action="store_true", help="print the reference mask paths instead (one per line)")
    p.add_argument("--manifest", action="store_true",
                   help="print the path of a manifest of the sample with its masks, for `mome evaluate --split test`")
    p.add_argument("--copy", type=Path, metavar="DEST", help="copy the sample's CT to this file or folder")
    add_progress_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.list or not args.name:
        if args.download or args.masks or args.manifest or args.copy:
            print("mome sample: error: name the sample (see `mome sample --list`)", file=sys.stderr)
            return 2
        return _list()
    # Progress only for a download: printing a path needs no bar (and JSON lines would hide the path).
    return run_reporting_errors(lambda progress: _one(args, progress), args.progress if args.download else "none",
                                "mome sample")


def _list() -> int:
    from ..resource_files import samples

    for s in samples():
        print(f"{s.name}  {s.title}\n    {s.description}\n    licence {s.license}; source: {s.source}")
        if s.citation:
            print(f"    cite: {s.citation}")
        if s.bundled:
            print(f"    shipped with MoME: {s.path}")
        elif s.available:
            print(f"    remote ({s.size_text()}), downloaded: {s.path}")
        else:
            print(f"    remote, not downloaded: `{s.download_command()}` fetches {s.size_text()} from "
                  f"{s.remote.url('')}")
    return 0


def _one(args: argparse.Namespace, progress) -> int:
    from ..hub.samples import download_sample
    from ..progress import JsonLinesProgress
    from ..resource_files import find_sample, sample

    try:
        found = find_sample(args.name)
    except KeyError as exc:
        raise ValueError(exc.args[0]) from None
    if args.download:
        found = download_sample(found, download_consent(args.yes), progress)
    found = sample(found.name)  # there now, or an error that says how to get it
    if args.masks or args.manifest:
        if not found.masks():
            raise FileNotFoundError(f"sample {found.name} has no reference masks")
        lines = [str(found.manifest)] if args.manifest else [str(p) for p in found.masks().values()]
    elif args.copy is not None:
        dest = args.copy / found.path.name if args.copy.is_dir() else args.copy
        if dest.exists():
            raise FileExistsError(f"{dest} exists; choose another destination")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(found.path, dest)
        lines = [str(dest)]
    else:
        lines = [str(found.path)]
    progress.done(sample=found.name, paths=lines)
    if not isinstance(progress, JsonLinesProgress):
        print("\n".join(lines))
    return 0
