"""Image and label files paired by a file-name pattern (the layouts of BTCV, KiTS, LiTS, CT-ORG, …).

The image pattern is a glob below the dataset folder whose last single ``*`` is the case id; each label
template is a path relative to the image's folder (``{id}`` is the case id), or a bare file name with
``{id}``, looked up anywhere below the dataset folder (the nearest to the image when several share it).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..vocabulary import Vocabulary
from .imported import ImportedDataset, finish_pairs, preset_label_map
from .presets import DatasetPreset, Pairs


def pattern_regex(pattern: str) -> re.Pattern:
    """A glob as a regex over '/'-separated relative paths, the last lone ``*`` captured as ``id``."""
    stars = [m.start() for m in re.finditer(r"(?<!\*)\*(?!\*)", pattern)]
    if not stars:
        raise ValueError(f"image pattern {pattern!r} needs a '*' where the case id is")
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern[i] == "*":
            out += "(?P<id>[^/]+?)" if i == stars[-1] else "[^/]*"
            i += 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def import_pairs(folder: Path, vocabulary: Vocabulary, *, name: str | None = None,
                 preset: DatasetPreset | None = None, overrides=None, val_fraction: float = 0.1,
                 layout: Pairs | None = None) -> ImportedDataset:
    folder = Path(folder)
    if preset is None:
        raise ValueError("image/label pairs carry no label names: name the label convention with --preset")
    layout = layout or (preset.layout if isinstance(preset.layout, Pairs) else None)
    if layout is None:
        raise ValueError(f"{preset.title}: {preset.note or 'give --images and --labels patterns'}")
    imported = ImportedDataset(name or preset.key, [], source=f"{preset.key} {folder}")
    imported.label_names, imported.label_map = preset_label_map(preset, vocabulary, overrides)

    by_name: dict[str, list[Path]] = {}
    if any("/" not in t and "{id}" in t for t in layout.labels):
        for root, _, files in os.walk(folder):
            for f in files:
                by_name.setdefault(f, []).append(Path(root) / f)

    def label_for(image: Path, cid: str) -> Path | None:
        for template in layout.labels:
            wanted = template.format(id=cid)
            # A name without the id (KiTS's "segmentation.nii.gz") only tells cases apart by its folder.
            if "/" in wanted or "{id}" not in template:
                path = (image.parent / wanted).resolve()
                if path.is_file():
                    return path
            else:
                candidates = [p for p in by_name.get(wanted, []) if p != image]
                if candidates:  # the one sharing the longest folder prefix with the image
                    return max(candidates, key=lambda p: len(os.path.commonpath([p, image])))
        return None

    found, missing, seen = [], [], set()
    for pattern in layout.images:
        regex = pattern_regex(pattern)
        for image in sorted(folder.glob(pattern)):
            match = regex.match(image.relative_to(folder).as_posix())
            if not match or image in seen:
                continue
            seen.add(image)
            cid = match.group("id")
            label = label_for(image, cid)
            if label is None:
                missing.append(image.relative_to(folder).as_posix())
            else:
                found.append((cid, image, label, "train"))
    if missing:
        imported.notes.append(f"{len(missing)} image(s) have no label file (e.g. test cases): "
                              f"{', '.join(missing[:5])}{' …' if len(missing) > 5 else ''}")
    if not found:
        raise ValueError(f"found no image matching {list(layout.images)} with a label {list(layout.labels)} "
                         f"below {folder}")
    ids = [f[0] for f in found]
    if len(set(ids)) < len(ids):
        raise ValueError(f"the pattern {list(layout.images)} gives the same case id to several images below {folder}")
    finish_pairs(imported, found, preset, val_fraction)
    return imported
