"""Stand-ins for a trained model, for tests and benchmarks.

* :func:`random_package`: the real architecture and package format with random weights. Tests use
  it to run the engine and the CLI end to end without a trained model (checking geometry, formats
  and behaviour, never accuracy); the benchmark uses it when no trained package is installed
  (speed does not depend on the weight values).
* :class:`ThresholdModel`: a network-shaped function whose masks are known in advance (voxels
  brighter than a HU level), so tests can check that masks land on exactly the right voxels of the
  input, whatever its orientation.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mome.model import MoME, MoMEConfig
from mome.package import ModelPackage, PackageClass, PackageInfo, Preprocessing
from mome.vocabulary import load_vocabulary

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


class ThresholdModel(nn.Module):
    """``forward(image B×1×X³, text K×T) → logits B×K×X³`` with class k inside where HU > ``levels_hu[k]``.

    ``image`` is the preprocessed [0, 1] intensity, so each HU level is mapped through ``hu_window``
    the same way preprocessing maps the CT. Levels repeat when there are more classes than levels.
    """

    def __init__(self, levels_hu: Sequence[float] = (37.5,), hu_window: tuple[float, float] = (-175.0, 250.0),
                 gain: float = 50.0):
        super().__init__()
        low, high = hu_window
        self.register_buffer("levels", torch.tensor([(h - low) / (high - low) for h in levels_hu]))
        self.gain = gain
        self.calls = 0

    def forward(self, image: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        k = text.shape[-2]
        levels = self.levels[torch.arange(k) % len(self.levels)].view(1, k, 1, 1, 1)
        return self.gain * (image.float() - levels.to(image.device))
