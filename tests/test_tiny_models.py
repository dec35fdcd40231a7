"""The tiny offline models load through the public diffusers entry points and inpaint deterministically."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.tiny_models import BOS_ID, EOS_ID, TOKENIZER_MAX_LENGTH, make_tokenizer, single_file_config_dir

SIZE = 64
STEPS = 2


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail loudly if loading a tiny model ever reaches for the network (the fixtures must be offline)."""
    real_connect = socket.socket.connect

    def guarded_connect(self: socket.socket, address: Any) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            raise AssertionError(f"network access attempted: {address!r}")
        real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)


def _inputs() -> tuple[Image.Image, Image.Image]:
    # A gradient (not flat) so the VAE sees structure; the mask covers the centre only.
    ramp = np.linspace(0, 255, SIZE, dtype=np.uint8)
    rgb = np.stack([np.tile(ramp, (SIZE, 1)), np.tile(ramp[:, None], (1, SIZE)), np.full((SIZE, SIZE), 90)], -1)
    image = Image.fromarray(rgb.astype(np.uint8), "RGB")
    mask = np.zeros((SIZE, SIZE), dtype=np.uint8)
    mask[16:48, 16:48] = 255
    return image, Image.fromarray(mask, "L")


def _inpaint(pipe: Any, seed: int, **extra: Any) -> np.ndarray:
    import torch

    image, mask = _inputs()
    result = pipe(
        prompt="a red apple on a table",
        image=image,
        mask_image=mask,
        # Explicit size: the pipelines default to unet.sample_size * vae_scale_factor, not the input size.
        height=SIZE,
        width=SIZE,
        num_inference_steps=STEPS,
        generator=torch.Generator("cpu").manual_seed(seed),
        **extra,
    ).images[0]
    assert isinstance(result, Image.Image)
    assert result.size == (SIZE, SIZE)
    return np.asarray(result)


def _assert_seeded(pipe: Any, **extra: Any) -> None:
    first = _inpaint(pipe, seed=0, **extra)
    again = _inpaint(pipe, seed=0, **extra)
    other = _inpaint(pipe, seed=1, **extra)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other), "a different seed should give different pixels"


def _load_inpaint(path: Path, **kwargs: Any) -> Any:
    from diffusers import AutoPipelineForInpainting

    pipe = AutoPipelineForInpainting.from_pretrained(path, **kwargs)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_tokenizer_round_trips_through_save_pretrained(tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = make_tokenizer()
    tokenizer.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path)

    assert type(reloaded).__name__ == "CLIPTokenizer"
    assert reloaded.model_max_length == TOKENIZER_MAX_LENGTH
    assert (reloaded.bos_token_id, reloaded.eos_token_id, reloaded.pad_token_id) == (BOS_ID, EOS_ID, EOS_ID)
    prompt = "A Cat, sitting on the mat! ünïcödé"
    ids = reloaded(prompt, padding="max_length", max_length=reloaded.model_max_length, truncation=True).input_ids
    assert ids == tokenizer(prompt, padding="max_length", max_length=TOKENIZER_MAX_LENGTH, truncation=True).input_ids
    assert len(ids) == TOKENIZER_MAX_LENGTH
    assert ids[0] == BOS_ID and ids[-1] == EOS_ID
    assert max(ids) <= EOS_ID
    # CLIP's decoder turns every end-of-word marker into a space, so compare a prompt without punctuation.
    assert reloaded.decode(reloaded("A red Apple").input_ids, skip_special_tokens=True) == "a red apple"


def test_sd_inpaint_is_a_nine_channel_inpainting_pipeline(tiny_sd_inpaint: Path) -> None:
    from diffusers import StableDiffusionInpaintPipeline

    pipe = _load_inpaint(tiny_sd_inpaint)
    assert type(pipe) is StableDiffusionInpaintPipeline
    assert pipe.unet.config.in_channels == 9
    assert pipe.safety_checker is None
    _assert_seeded(pipe)


def test_sd_loads_for_inpainting_with_a_four_channel_unet(tiny_sd: Path) -> None:
    from diffusers import StableDiffusionInpaintPipeline

    pipe = _load_inpaint(tiny_sd)
    assert type(pipe) is StableDiffusionInpaintPipeline
    assert pipe.unet.config.in_channels == 4  # latent blending path
    _assert_seeded(pipe)


def test_sd_loads_as_text_to_image(tiny_sd: Path) -> None:
    import torch
    from diffusers import AutoPipelineForText2Image, StableDiffusionPipeline

    pipe = AutoPipelineForText2Image.from_pretrained(tiny_sd)
    pipe.set_progress_bar_config(disable=True)
    assert type(pipe) is StableDiffusionPipeline
    image = pipe(
        "a red apple",
        height=SIZE,
        width=SIZE,
        num_inference_steps=STEPS,
        generator=torch.Generator("cpu").manual_seed(0),
    ).images[0]
    assert image.size == (SIZE, SIZE)


def test_sdxl_inpaint_is_a_nine_channel_sdxl_pipeline(tiny_sdxl_inpaint: Path) -> None:
    from diffusers import StableDiffusionXLInpaintPipeline

    pipe = _load_inpaint(tiny_sdxl_inpaint)
    assert type(pipe) is StableDiffusionXLInpaintPipeline
    assert pipe.unet.config.in_channels == 9
    assert pipe.text_encoder is not None and pipe.text_encoder_2 is not None
    _assert_seeded(pipe)


def test_sdxl_refiner_loads_for_inpainting_without_the_first_text_encoder(tiny_sdxl_refiner: Path) -> None:
    from diffusers import StableDiffusionXLInpaintPipeline

    pipe = _load_inpaint(tiny_sdxl_refiner)
    assert type(pipe) is StableDiffusionXLInpaintPipeline
    assert pipe.unet.config.in_channels == 4
    assert pipe.text_encoder is None and pipe.tokenizer is None
    assert pipe.config.requires_aesthetics_score
    _assert_seeded(pipe, aesthetic_score=6.0)


def test_controlnet_loads_alone_and_selects_the_controlnet_inpaint_pipeline(
    tiny_controlnet: Path, tiny_sd_inpaint: Path
) -> None:
    from diffusers import ControlNetModel, StableDiffusionControlNetInpaintPipeline

    controlnet = ControlNetModel.from_pretrained(tiny_controlnet)
    pipe = _load_inpaint(tiny_sd_inpaint, controlnet=controlnet)
    assert type(pipe) is StableDiffusionControlNetInpaintPipeline
    assert pipe.unet.config.in_channels == 9
    assert pipe.controlnet.config.cross_attention_dim == pipe.unet.config.cross_attention_dim
    control_image, _ = _inputs()
    _assert_seeded(pipe, control_image=control_image)


def test_kandinsky22_loads_as_the_combined_inpaint_pipeline(tiny_kandinsky_inpaint: Path) -> None:
    from diffusers import KandinskyV22InpaintCombinedPipeline

    pipe = _load_inpaint(tiny_kandinsky_inpaint)
    assert type(pipe) is KandinskyV22InpaintCombinedPipeline
    assert pipe.unet.config.in_channels == 9
    # The prior defaults to 25 steps; keep it as short as the decoder.
    _assert_seeded(pipe, prior_num_inference_steps=STEPS)


def test_single_file_checkpoint_loads_offline_with_a_local_config(
    tiny_sd_inpaint_single_file: Path, tiny_sd_inpaint: Path
) -> None:
    import torch
    from diffusers import StableDiffusionInpaintPipeline

    config_dir = single_file_config_dir(tiny_sd_inpaint_single_file)
    assert not list(config_dir.rglob("*.safetensors")), "the config folder must not carry weights"
    # config must be a str: the per-model loaders reject a Path with "Invalid `config` argument".
    pipe = StableDiffusionInpaintPipeline.from_single_file(str(tiny_sd_inpaint_single_file), config=str(config_dir))
    pipe.set_progress_bar_config(disable=True)
    assert type(pipe) is StableDiffusionInpaintPipeline
    assert pipe.unet.config.in_channels == 9

    # Every converted tensor must land where the diffusers folder has it: from_single_file loads non-strictly,
    # so a key missed by the conversion would otherwise go unnoticed (left random or on the meta device).
    reference = _load_inpaint(tiny_sd_inpaint)
    for name in ("unet", "vae", "text_encoder"):
        loaded, expected = getattr(pipe, name).state_dict(), getattr(reference, name).state_dict()
        assert loaded.keys() == expected.keys(), name
        mismatched = [key for key in expected if not torch.equal(loaded[key], expected[key])]
        assert not mismatched, f"{name}: {mismatched[:5]}"

    _assert_seeded(pipe)
    np.testing.assert_array_equal(_inpaint(pipe, seed=0), _inpaint(reference, seed=0))
