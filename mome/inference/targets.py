"""What to segment: the requested classes, normalised to :class:`TargetClass`, and their text embeddings.

A class comes from the vocabulary (``StructureClass``, richest description: lesions know the organ
they lie in), from the model package (``PackageClass``), or as a key string. Classes the package
carries an embedding for use it; any other class (a vocabulary structure the model was not trained
on, or free text) is embedded with the package's text encoder and flagged as zero-shot.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import torch

from ..package import ModelPackage, PackageClass
from ..vocabulary import SegmentDescriptor, StructureClass, Vocabulary, load_vocabulary
from .errors import ClassNotSupportedError

ClassLike = Union[str, StructureClass, PackageClass]


@dataclass(frozen=True)
class TargetClass:
    """One structure to segment, with what post-processing and the writers need to know."""

    key: str
    name: str
    prompt: str  # the text that is (or was, for trained classes) embedded
    kind: str  # vocabulary kind: organ, tumor, cyst, vessel, bone, muscle, other
    parents: tuple[str, ...]  # organ keys a lesion lies in
    laterality: str | None
    descriptor: SegmentDescriptor
    trained: bool  # the package carries this class's embedding
    source: Any = None  # the StructureClass / PackageClass it came from

    @property
    def free_text(self) -> bool:
        return bool(getattr(self.source, "free_text", False))


def resolve_targets(package: ModelPackage, classes: Sequence[ClassLike],
                    vocabulary: Vocabulary | None = None) -> list[TargetClass]:
    """Normalise ``classes`` (in order, repeats dropped) against the package and the vocabulary."""
    vocabulary = vocabulary or load_vocabulary()
    trained = set(package.class_keys)
    targets: list[TargetClass] = []
    seen: set[str] = set()
    for item in classes:
        target = _resolve_one(item, package, vocabulary, trained)
        if target.key not in seen:
            seen.add(target.key)
            targets.append(target)
    if not targets:
        raise ClassNotSupportedError("no structures to segment were given")
    return targets


def _resolve_one(item: ClassLike, package: ModelPackage, vocabulary: Vocabulary, trained: set[str]) -> TargetClass:
    if isinstance(item, str):
        # The vocabulary first: its classes carry more (a lesion's anatomic region, synonyms).
        found = vocabulary.lookup(item)
        if found is not None:
            item = found
        elif item in trained:
            item = package.class_by_key(item)
        else:
            near = ", ".join(c.name for c in vocabulary.closest(item))
            hint = f" Did you mean: {near}?" if near else ""
            raise ClassNotSupportedError(f"Unknown structure {item!r}.{hint}")
    if isinstance(item, StructureClass):
        package_class = package.class_by_key(item.key) if item.key in trained else None
        return TargetClass(
            key=item.key,
            name=item.name,
            prompt=package_class.prompt if package_class else item.prompt,
            kind=item.kind,
            parents=tuple(item.parent),
            laterality=item.laterality,
            descriptor=item.descriptor(),
            trained=package_class is not None,
            source=item,
        )
    if isinstance(item, PackageClass):
        return TargetClass(
            key=item.key,
            name=item.name,
            prompt=item.prompt,
            kind=item.kind,
            parents=tuple(item.parents),
            laterality=item.laterality,
            descriptor=item.descriptor(),
            trained=item.key in trained,
            source=item,
        )
    raise TypeError(f"cannot segment a {type(item).__name__}; pass a key, StructureClass or PackageClass")


def text_cache_dir() -> Path:
    """Where free-text embeddings are cached: ``$MOME_CACHE_DIR/text``, else the user cache folder."""
    root = os.environ.get("MOME_CACHE_DIR")
    if root:
        return Path(root).expanduser() / "text"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "mome" / "text"


def class_embeddings(package: ModelPackage, targets: Sequence[TargetClass], text_encoder: Any = None,
                     warnings: list[str] | None = None) -> torch.Tensor:
    """``K×text_dim`` raw text embeddings of ``targets``, in order.

    ``text_encoder`` (anything with ``embed_names(list[str]) -> Tensor``, e.g. a
    ``CachedTextEncoder``) is only needed, and only built when not given, for untrained classes.
    """
    warnings = warnings if warnings is not None else []
    untrained = [t for t in targets if not t.trained]
    if untrained and not package.info.allows_free_text:
        names = ", ".join(repr(t.name) for t in untrained)
        raise ClassNotSupportedError(
            f"model {package.info.name} {package.info.version} was not trained on {names} and does not "
            f"allow segmenting other structures from text; choose among its {len(package.classes)} classes "
            "(`mome classes --model ...`) or use another model"
        )
    rows: dict[str, torch.Tensor] = {}
    trained = [t.key for t in targets if t.trained]
    if trained:
        rows.update(zip(trained, package.embeddings_for(trained)))
    if untrained:
        encoder = text_encoder or _package_text_encoder(package)
        vectors = encoder.embed_names([t.prompt for t in untrained])
        if vectors.shape[-1] != package.config.text_dim:
            raise ClassNotSupportedError(
                f"the text encoder gives {vectors.shape[-1]}-d embeddings but model {package.info.name} "
                f"expects {package.config.text_dim}-d ones; it cannot segment untrained classes"
            )
        rows.update(zip([t.key for t in untrained], vectors))
        warnings.append(
            f"model {package.info.name} was never trained on {', '.join(repr(t.name) for t in untrained)}: "
            "segmented from the text embedding alone (zero-shot), so expect a poor or empty result"
        )
    return torch.stack([rows[t.key].float() for t in targets])


def _package_text_encoder(package: ModelPackage) -> Any:
    from ..text import CachedTextEncoder, build_text_encoder

    return CachedTextEncoder(
        build_text_encoder(package.info.text_encoder), cache_dir=text_cache_dir(),
        template=package.info.prompt_template,
    )
