"""Model packages with random weights: the real architecture and file format, no training.

Tests use them to exercise the engine and the CLI end to end without a trained model (they check
geometry, formats and behaviour, never accuracy), and the benchmark uses them when no trained
package is installed (speed does not depend on the weight values).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..model import MoME, MoMEConfig
from ..package import ModelPackage, PackageClass, PackageInfo, Preprocessing
from ..vocabulary import load_vocabulary

#: Classes of a random package unless told otherwise: organs, a lesion with its parent, both lungs.
DEFAULT_CLASSES = ("liver", "spleen", "kidney_right", "kidney_left", "liver_tumor", "lung_right", "lung_left", "aorta")


def random_package(
    size: str = "tiny",
    class_keys: Sequence[str] = DEFAULT_CLASSES,
    preprocessing: Preprocessing | None = None,
    text_dim: int = 384,
    variant: str = "mome",
    name: str = "random-test",
    version: str = "0.0.0",
    allows_free_text: bool = True,
    seed: int = 0,
) -> ModelPackage:
    """A package of ``size`` (``tiny``/``small``/``paper``) with random weights and class embeddings.

    ``text_dim`` 384 matches the offline MiniLM text encoder, so free text works dimensionally.
    """
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = MoME(MoMEConfig.from_size(size, text_dim=text_dim, variant=variant))
    vocabulary = load_vocabulary()
    classes = [PackageClass.from_structure(vocabulary.get(k)) for k in class_keys]
    embeddings = torch.randn(len(classes), text_dim, generator=generator)
    info = PackageInfo(
        name=name,
        version=version,
        description="random weights: for tests and benchmarks only, segments nothing meaningful",
        text_encoder="minilm-l6-v2",
        allows_free_text=allows_free_text,
        provenance={"random_weights": True, "seed": seed, "size": size},
    )
    return ModelPackage.from_model(model, info, preprocessing or Preprocessing(), classes, embeddings)
