"""Text branch: the offline MiniLM encoder, the CLIP path, and the embedding cache."""

from __future__ import annotations

import time

import pytest
import torch
import torch.nn.functional as F

from mome.text import (
    CachedTextEncoder,
    CLIPEncoder,
    MiniLMEncoder,
    TextEncoderUnavailableError,
    build_text_encoder,
)


@pytest.fixture(scope="module")
def minilm() -> MiniLMEncoder:
    return MiniLMEncoder()


def test_minilm_places_kidney_nearer_renal_than_femur(minilm):
    e = minilm.encode(["kidney", "renal", "femur"])
    assert e.shape == (3, 384)
    assert F.cosine_similarity(e[0], e[1], 0) > F.cosine_similarity(e[0], e[2], 0) + 0.1


def test_cache_encodes_each_prompt_once_and_persists(minilm, tmp_path):
    cached = CachedTextEncoder(minilm, cache_dir=tmp_path)
    first = cached.embed_names(["liver", "spleen"])
    again = cached.embed_names(["spleen", "liver", "liver"])
    assert cached.encoder_calls == 1
    torch.testing.assert_close(again[0], first[1])
    assert "A computerized tomography of a" not in "liver"  # template is applied inside
    reopened = CachedTextEncoder(minilm, cache_dir=tmp_path)
    torch.testing.assert_close(reopened.embed_names(["liver"])[0], first[0])
    assert reopened.encoder_calls == 0


def test_clip_without_weights_fails_fast_with_a_clear_message(tmp_path):
    start = time.monotonic()
    with pytest.raises(TextEncoderUnavailableError, match="--text-encoder minilm"):
        build_text_encoder("clip")
    with pytest.raises(TextEncoderUnavailableError, match="not found"):
        CLIPEncoder(weights=tmp_path / "missing.bin")
    assert time.monotonic() - start < 5


def test_clip_loads_a_local_open_clip_checkpoint(tmp_path):
    """The paper-default path, with a locally saved ViT-B-32 (random weights: CLIP's can't be fetched here)."""
    import open_clip

    model = open_clip.create_model("ViT-B-32", pretrained=None)
    path = tmp_path / "open_clip_model.pt"
    torch.save(model.state_dict(), path)
    encoder = CLIPEncoder(weights=path)
    emb = encoder.encode(["A computerized tomography of a liver"])
    assert emb.shape == (1, 512) and encoder.encoder_id == "clip-vit-b-32-openai"
    torch.testing.assert_close(emb, model.encode_text(encoder.tokenizer(["A computerized tomography of a liver"])).float())
