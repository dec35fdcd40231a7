"""Tiny randomly initialised diffusion pipelines for offline tests and benchmarks.

Every ``build_*`` function creates its components after ``torch.manual_seed(0)``, saves them with
``save_pretrained`` (safetensors) and returns the folder, so tests load the result through the same public
path a user's model takes (``AutoPipelineForInpainting.from_pretrained``). Nothing here touches the network:
the CLIP tokenizer is built from an in-memory byte-level vocabulary instead of being downloaded.

The component configs follow diffusers' own fast tests (tests/pipelines/... in the diffusers repository).
torch, diffusers and transformers are imported inside the functions: this module is a pytest plugin of the
whole suite, and tests that never touch a model should not pay for those imports.
``build_all`` needs no pytest, so benchmarks can call it too.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTokenizer

# Special tokens of the offline tokenizer: their ids follow the 512 byte-level entries and eos is the largest
# id, so CLIPTextModel's pooling (first eos position, or argmax for legacy configs) lands on it either way.
BOS_TOKEN = "<|startoftext|>"
EOS_TOKEN = "<|endoftext|>"
BOS_ID = 512
EOS_ID = 513
TOKENIZER_MAX_LENGTH = 77
# Larger than the tokenizer (514 entries), like diffusers' tests; unused rows are harmless.
TEXT_VOCAB_SIZE = 1000


# ----------------------------------------------------------------------------------------------------
# Shared components
# ----------------------------------------------------------------------------------------------------


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte -> printable character table (what the ByteLevel pre-tokenizer emits)."""
    printable = (
        list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    )
    byte_values = printable[:]
    code_points = printable[:]
    extra = 0
    for b in range(256):
        if b not in byte_values:
            byte_values.append(b)
            code_points.append(256 + extra)
            extra += 1
    return {b: chr(c) for b, c in zip(byte_values, code_points)}


def make_tokenizer() -> CLIPTokenizer:
    """An offline CLIP tokenizer: every byte is a token, so any prompt encodes without merges or downloads."""
    from transformers import CLIPTokenizer

    chars = list(_bytes_to_unicode().values())
    vocab = {c: i for i, c in enumerate(chars)}
    # CLIP's BPE marks the last symbol of each word with "</w>", so those variants must exist too.
    vocab.update({c + "</w>": i + len(chars) for i, c in enumerate(chars)})
    vocab[BOS_TOKEN] = BOS_ID
    vocab[EOS_TOKEN] = EOS_ID
    # model_max_length must be explicit: the default (1e30) breaks padding="max_length" in the pipelines.
    return CLIPTokenizer(
        vocab=vocab,
        merges=[],
        model_max_length=TOKENIZER_MAX_LENGTH,
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        pad_token=EOS_TOKEN,
        unk_token=EOS_TOKEN,
    )


def _text_config(**overrides: Any) -> CLIPTextConfig:
    from transformers import CLIPTextConfig

    params: dict[str, Any] = {
        "bos_token_id": BOS_ID,
        "eos_token_id": EOS_ID,
        "pad_token_id": EOS_ID,
        "hidden_size": 32,
        "intermediate_size": 37,
        "layer_norm_eps": 1e-5,
        "num_attention_heads": 4,
        "num_hidden_layers": 5,
        "vocab_size": TEXT_VOCAB_SIZE,
        "max_position_embeddings": TOKENIZER_MAX_LENGTH,
    }
    params.update(overrides)
    return CLIPTextConfig(**params)


def _vae() -> AutoencoderKL:
    from diffusers import AutoencoderKL

    # Two blocks -> vae_scale_factor 2, so a 64x64 image is a 32x32 latent (the UNet's sample_size).
    return AutoencoderKL(
        block_out_channels=[32, 64],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
        latent_channels=4,
        sample_size=64,
    )


def _sd_unet(in_channels: int) -> UNet2DConditionModel:
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=2,
        sample_size=32,
        in_channels=in_channels,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
    )


def _sdxl_unet(in_channels: int, *, refiner: bool) -> UNet2DConditionModel:
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=2,
        sample_size=32,
        in_channels=in_channels,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 2),
        # time ids * addition_time_embed_dim + pooled text (projection_dim 32): the base has 6 time ids
        # (original size, crop, target size); the refiner has 5 (the aesthetic score replaces target size).
        projection_class_embeddings_input_dim=5 * 8 + 32 if refiner else 6 * 8 + 32,
        # Base: both encoders' hidden states are concatenated (32 + 32); the refiner only has text_encoder_2.
        cross_attention_dim=32 if refiner else 64,
    )


def _sd_components(in_channels: int) -> dict[str, Any]:
    import torch
    from diffusers import PNDMScheduler
    from transformers import CLIPTextModel

    torch.manual_seed(0)
    unet = _sd_unet(in_channels)
    # SD 1.5's own scheduler config, so scheduler swaps in the app see realistic values.
    scheduler = PNDMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        skip_prk_steps=True,
        steps_offset=1,
    )
    torch.manual_seed(0)
    vae = _vae()
    torch.manual_seed(0)
    text_encoder = CLIPTextModel(_text_config())
    return {
        "unet": unet,
        "scheduler": scheduler,
        "vae": vae,
        "text_encoder": text_encoder,
        "tokenizer": make_tokenizer(),
        # Saved as null entries in model_index.json; requires_safety_checker=False keeps loading silent.
        "safety_checker": None,
        "feature_extractor": None,
        "image_encoder": None,
        "requires_safety_checker": False,
    }


def _sdxl_scheduler() -> Any:
    from diffusers import EulerDiscreteScheduler

    return EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        steps_offset=1,
        timestep_spacing="leading",
    )


def _save(pipe: Any, path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(path, safe_serialization=True)
    return path


# ----------------------------------------------------------------------------------------------------
# Builders
# ----------------------------------------------------------------------------------------------------


def build_sd_inpaint(path: Path) -> Path:
    """A true SD 1.5-style inpainting model: 9-channel UNet (latents + mask + masked-image latents)."""
    from diffusers import StableDiffusionInpaintPipeline

    return _save(StableDiffusionInpaintPipeline(**_sd_components(in_channels=9)), path)


def build_sd(path: Path) -> Path:
    """A plain SD 1.5-style text-to-image checkpoint (4-channel UNet).

    AutoPipelineForInpainting loads it as StableDiffusionInpaintPipeline, which then uses latent blending.
    """
    from diffusers import StableDiffusionPipeline

    return _save(StableDiffusionPipeline(**_sd_components(in_channels=4)), path)


def build_sdxl_inpaint(path: Path) -> Path:
    """An SDXL inpainting model: two text encoders/tokenizers, Euler scheduler, 9-channel UNet."""
    import torch
    from diffusers import StableDiffusionXLInpaintPipeline
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(0)
    unet = _sdxl_unet(in_channels=9, refiner=False)
    torch.manual_seed(0)
    vae = _vae()
    torch.manual_seed(0)
    config = _text_config(hidden_act="gelu", projection_dim=32)
    text_encoder = CLIPTextModel(config)
    text_encoder_2 = CLIPTextModelWithProjection(config)
    pipe = StableDiffusionXLInpaintPipeline(
        vae=vae,
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=make_tokenizer(),
        tokenizer_2=make_tokenizer(),
        unet=unet,
        scheduler=_sdxl_scheduler(),
        requires_aesthetics_score=False,
        # The watermarker is an optional extra (invisible-watermark); never depend on it in tests.
        add_watermarker=False,
    )
    return _save(pipe, path)


def build_sdxl_refiner(path: Path) -> Path:
    """An SDXL refiner: only text_encoder_2, aesthetic-score conditioning, 4-channel UNet.

    Saved as StableDiffusionXLImg2ImgPipeline like the published refiner, so the app meets the same
    model_index.json (with null text_encoder/tokenizer) that a real refiner download has.
    """
    import torch
    from diffusers import StableDiffusionXLImg2ImgPipeline
    from transformers import CLIPTextModelWithProjection

    torch.manual_seed(0)
    unet = _sdxl_unet(in_channels=4, refiner=True)
    torch.manual_seed(0)
    vae = _vae()
    torch.manual_seed(0)
    text_encoder_2 = CLIPTextModelWithProjection(_text_config(hidden_act="gelu", projection_dim=32))
    pipe = StableDiffusionXLImg2ImgPipeline(
        vae=vae,
        text_encoder=None,
        text_encoder_2=text_encoder_2,
        tokenizer=None,
        tokenizer_2=make_tokenizer(),
        unet=unet,
        scheduler=_sdxl_scheduler(),
        requires_aesthetics_score=True,
        add_watermarker=False,
    )
    return _save(pipe, path)


BUILDERS: dict[str, Callable[[Path], Path]] = {
    "sd_inpaint": build_sd_inpaint,
    "sd": build_sd,
    "sdxl_inpaint": build_sdxl_inpaint,
    "sdxl_refiner": build_sdxl_refiner,
}


def build_all(root: Path) -> dict[str, Path]:
    """Build every tiny model under ``root/<name>``; usable without pytest (benchmarks)."""
    return {name: builder(Path(root) / name) for name, builder in BUILDERS.items()}


# ----------------------------------------------------------------------------------------------------
# Session fixtures: each model is built once per test session, on first use.
# ----------------------------------------------------------------------------------------------------


def _build_fixture(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    return BUILDERS[name](tmp_path_factory.mktemp(f"tiny_{name}"))


@pytest.fixture(scope="session")
def tiny_sd_inpaint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build_fixture(tmp_path_factory, "sd_inpaint")


@pytest.fixture(scope="session")
def tiny_sd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build_fixture(tmp_path_factory, "sd")


@pytest.fixture(scope="session")
def tiny_sdxl_inpaint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build_fixture(tmp_path_factory, "sdxl_inpaint")


@pytest.fixture(scope="session")
def tiny_sdxl_refiner(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build_fixture(tmp_path_factory, "sdxl_refiner")
