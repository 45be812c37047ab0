"""``mome sample [NAME]``: the sample CTs shipped with MoME, to try it on a fresh install.

``mome sample`` (or ``--list``) lists them; ``mome sample NAME`` prints the file's path, so that
``mome segment "$(mome sample example_ct)" ...`` works anywhere; ``--copy DEST`` copies it.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("sample", help="list the sample CTs shipped with MoME, or print the path of one",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("name", nargs="?", help="sample name (see the list); prints its path")
    p.add_argument("--list", action="store_true", help="list the samples with their licence and source")
    p.add_argument("--copy", type=Path, metavar="DEST", help="copy the sample to this file or folder")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..resource_files import sample, samples

    if args.list or not args.name:
        for s in samples():
            print(f"{s.name}  {s.title}\n    {s.description}\n    licence {s.license}; source: {s.source}\n"
                  f"    {s.path}")
        return 0
    try:
        found = sample(args.name)
    except KeyError as exc:
        print(f"mome: error: {exc.args[0]}", file=sys.stderr)
        return 2
    if args.copy is None:
        print(found.path)
        return 0
    dest = args.copy / found.path.name if args.copy.is_dir() else args.copy
    if dest.exists():
        print(f"mome: error: {dest} exists; choose another destination", file=sys.stderr)
        return 2
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(found.path, dest)
    print(dest)
    return 0
