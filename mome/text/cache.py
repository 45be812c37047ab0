"""Embedding cache keyed by (encoder id, prompt text): a repeated prompt never re-runs the encoder."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .encoders import PROMPT_TEMPLATE, TextEncoder, templated


def _key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class CachedTextEncoder:
    """Wraps a ``TextEncoder``; keeps embeddings in memory and, optionally, in a safetensors file."""

    def __init__(self, encoder: TextEncoder, cache_dir: Path | None = None, template: str = PROMPT_TEMPLATE):
        self.encoder = encoder
        self.template = template
        self.encoder_calls = 0
        self._memory: dict[str, torch.Tensor] = {}
        self._file = Path(cache_dir) / f"{encoder.encoder_id}.safetensors" if cache_dir else None
        if self._file and self._file.is_file():
            self._memory.update(load_file(str(self._file)))

    @property
    def encoder_id(self) -> str:
        return self.encoder.encoder_id

    @property
    def dim(self) -> int:
        return self.encoder.dim

    def embed_names(self, names: list[str]) -> torch.Tensor:
        """Embed structure names with the prompt template: ``len(names)×dim``."""
        return self.embed_texts(templated(names, self.template))

    def embed_texts(self, texts: list[str]) -> torch.Tensor:
        missing = sorted({t for t in texts if _key(t) not in self._memory})
        if missing:
            self.encoder_calls += 1
            vectors = self.encoder.encode(missing)
            for text, vec in zip(missing, vectors):
                self._memory[_key(text)] = vec.detach().cpu().contiguous()
            self._persist()
        return torch.stack([self._memory[_key(t)] for t in texts])

    def _persist(self) -> None:
        if not self._file:
            return
        self._file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._file.with_suffix(".tmp")
        save_file(self._memory, str(tmp))
        tmp.replace(self._file)
