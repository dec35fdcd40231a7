"""Tiny randomly initialised diffusion pipelines for offline tests and benchmarks.

Every ``build_*(path) -> Path`` function creates its components after ``torch.manual_seed(0)``, saves them
with ``save_pretrained`` (safetensors) and returns the folder, so tests load the result through the same
public path a user's model takes (``AutoPipelineForInpainting.from_pretrained``). The exception is
``build_sd_inpaint_single_file``, which returns one original-layout ``.safetensors`` file (see its docstring).
Nothing here touches the network: the CLIP tokenizer is built from an in-memory byte-level vocabulary.

Session fixtures (one build per test session): tiny_sd_inpaint, tiny_sd, tiny_sdxl_inpaint, tiny_sdxl_refiner,
tiny_controlnet, tiny_kandinsky_inpaint, tiny_sd_inpaint_single_file. ``build_all(root)`` needs no pytest,
so benchmarks can call it too.

The component configs follow diffusers' own fast tests (tests/pipelines/... in the diffusers repository).
torch, diffusers and transformers are imported inside the functions: this module is a pytest plugin of the
whole suite, and tests that never touch a model should not pay for those imports.
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


def build_controlnet_sd15_inpaint(path: Path) -> Path:
    """A ControlNetModel saved on its own, matching the tiny SD UNet (cross_attention_dim 32, (32, 64) blocks).

    Load it with ``ControlNetModel.from_pretrained(path)`` and pass it as ``controlnet=`` to
    ``AutoPipelineForInpainting.from_pretrained`` (-> StableDiffusionControlNetInpaintPipeline).
    """
    import torch
    from diffusers import ControlNetModel

    torch.manual_seed(0)
    controlnet = ControlNetModel(
        block_out_channels=(32, 64),
        layers_per_block=2,
        in_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        cross_attention_dim=32,
        # One stride-2 stage: a 64x64 control image becomes the 32x32 latent grid.
        conditioning_embedding_out_channels=(16, 32),
    )
    return _save(controlnet, path)


def build_kandinsky22_inpaint(path: Path) -> Path:
    """A whole KandinskyV22InpaintCombinedPipeline (prior + decoder) so it loads offline in one call.

    Configs follow diffusers' tests/pipelines/kandinsky2_2 (test_kandinsky_inpaint.py, test_kandinsky_prior.py).
    """
    import torch
    from diffusers import (
        DDIMScheduler,
        KandinskyV22InpaintCombinedPipeline,
        PriorTransformer,
        UnCLIPScheduler,
        UNet2DConditionModel,
        VQModel,
    )
    from transformers import (
        CLIPImageProcessor,
        CLIPTextModelWithProjection,
        CLIPVisionConfig,
        CLIPVisionModelWithProjection,
    )

    embed_dim = 32  # CLIP image-embedding size shared by prior output, image encoder and decoder UNet input
    clip_image_size = 224

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        in_channels=9,
        out_channels=8,  # predicts mean and variance
        addition_embed_type="image",
        down_block_types=("ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D"),
        up_block_types=("SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D"),
        mid_block_type="UNetMidBlock2DSimpleCrossAttn",
        block_out_channels=(32, 64),
        layers_per_block=1,
        encoder_hid_dim=embed_dim,
        encoder_hid_dim_type="image_proj",
        cross_attention_dim=32,
        attention_head_dim=4,
        resnet_time_scale_shift="scale_shift",
        class_embed_type=None,
    )
    torch.manual_seed(0)
    movq = VQModel(
        block_out_channels=[32, 64],
        down_block_types=["DownEncoderBlock2D", "AttnDownEncoderBlock2D"],
        in_channels=3,
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=8,
        norm_type="spatial",
        num_vq_embeddings=12,
        out_channels=3,
        up_block_types=["AttnUpDecoderBlock2D", "UpDecoderBlock2D"],
        vq_embed_dim=4,
    )
    scheduler = DDIMScheduler(
        num_train_timesteps=1000,
        beta_schedule="linear",
        beta_start=0.00085,
        beta_end=0.012,
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
        prediction_type="epsilon",
        thresholding=False,
    )
    torch.manual_seed(0)
    prior = PriorTransformer(num_attention_heads=2, attention_head_dim=12, embedding_dim=embed_dim, num_layers=1)
    # clip_std starts at 0, which would make post_process_latents return all zeros: use ones.
    prior.clip_std = torch.nn.Parameter(torch.ones(prior.clip_std.shape))
    torch.manual_seed(0)
    image_encoder = CLIPVisionModelWithProjection(
        CLIPVisionConfig(
            hidden_size=embed_dim,
            image_size=clip_image_size,
            projection_dim=embed_dim,
            intermediate_size=37,
            num_attention_heads=4,
            num_channels=3,
            num_hidden_layers=5,
            patch_size=14,
        )
    )
    torch.manual_seed(0)
    text_encoder = CLIPTextModelWithProjection(_text_config(projection_dim=embed_dim))
    image_processor = CLIPImageProcessor(
        crop_size=clip_image_size,
        do_center_crop=True,
        do_normalize=True,
        do_resize=True,
        image_mean=[0.48145466, 0.4578275, 0.40821073],
        image_std=[0.26862954, 0.26130258, 0.27577711],
        resample=3,
        size=clip_image_size,
    )
    prior_scheduler = UnCLIPScheduler(
        variance_type="fixed_small_log",
        prediction_type="sample",
        num_train_timesteps=1000,
        clip_sample=True,
        clip_sample_range=10.0,
    )
    pipe = KandinskyV22InpaintCombinedPipeline(
        unet=unet,
        scheduler=scheduler,
        movq=movq,
        prior_prior=prior,
        prior_image_encoder=image_encoder,
        prior_text_encoder=text_encoder,
        prior_tokenizer=make_tokenizer(),
        prior_scheduler=prior_scheduler,
        prior_image_processor=image_processor,
    )
    return _save(pipe, path)


# --------------------------------------------------------------------------------------------------------------
# Single-file (original CompVis/LDM layout) checkpoint
# --------------------------------------------------------------------------------------------------------------

SINGLE_FILE_NAME = "tiny-sd-inpainting.safetensors"
SINGLE_FILE_CONFIG_DIR = "config"

# Resnet sub-module names: diffusers -> LDM ResBlock.
_RESNET_TO_LDM = {
    "norm1": "in_layers.0",
    "conv1": "in_layers.2",
    "time_emb_proj": "emb_layers.1",
    "norm2": "out_layers.0",
    "conv2": "out_layers.3",
    "conv_shortcut": "skip_connection",
}
# VAE attention sub-module names: diffusers -> LDM AttnBlock.
_VAE_ATTENTION_TO_LDM = {
    "group_norm": "norm",
    "to_q": "q",
    "to_k": "k",
    "to_v": "v",
    "to_out.0": "proj_out",
}


def _rename_head(rest: str, mapping: dict[str, str]) -> str:
    for new, old in mapping.items():
        if rest.startswith(new + "."):
            return old + rest[len(new) :]
    return rest


def unet_to_ldm(state_dict: dict[str, Any], config: Any) -> dict[str, Any]:
    """Diffusers UNet2DConditionModel keys -> LDM ``model.diffusion_model.*`` keys (SD 1.x layout).

    The inverse of ``convert_ldm_unet_checkpoint`` in diffusers.loaders.single_file_utils, written from the
    model config rather than for a fixed 4-level UNet (the layer maps of diffusers'
    scripts/convert_diffusers_to_original_stable_diffusion.py assume SD 1.5's exact block layout).
    """
    from diffusers.loaders.single_file_utils import DIFFUSERS_TO_LDM_MAPPING

    fixed = DIFFUSERS_TO_LDM_MAPPING["unet"]["layers"]
    per_block = config.layers_per_block + 1  # LDM numbers resnets and the down/up-sampler in one sequence
    up_has_attention = {i: "CrossAttn" in t for i, t in enumerate(config.up_block_types)}
    converted: dict[str, Any] = {}
    for key, value in state_dict.items():
        parts = key.split(".")
        if key in fixed:
            new = fixed[key]
        elif parts[0] == "down_blocks":
            block, kind = int(parts[1]), parts[2]
            if kind == "downsamplers":  # down_blocks.i.downsamplers.0.conv.* -> input_blocks.n.0.op.*
                new = f"input_blocks.{(block + 1) * per_block}.0.op." + ".".join(parts[5:])
            else:
                layer = 1 + block * per_block + int(parts[3])
                rest = ".".join(parts[4:])
                new = (
                    f"input_blocks.{layer}.0." + _rename_head(rest, _RESNET_TO_LDM)
                    if kind == "resnets"
                    else f"input_blocks.{layer}.1.{rest}"
                )
        elif parts[0] == "mid_block":
            index, rest = int(parts[2]), ".".join(parts[3:])
            if parts[1] == "resnets":  # middle_block = resnet, attention, resnet
                new = f"middle_block.{2 * index}." + _rename_head(rest, _RESNET_TO_LDM)
            else:
                new = f"middle_block.1.{rest}"
        elif parts[0] == "up_blocks":
            block, kind = int(parts[1]), parts[2]
            if kind == "upsamplers":  # the upsampler follows the resnet (and attention, when present)
                slot = 2 if up_has_attention[block] else 1
                new = f"output_blocks.{block * per_block + config.layers_per_block}.{slot}." + ".".join(parts[4:])
            else:
                layer = block * per_block + int(parts[3])
                rest = ".".join(parts[4:])
                new = (
                    f"output_blocks.{layer}.0." + _rename_head(rest, _RESNET_TO_LDM)
                    if kind == "resnets"
                    else f"output_blocks.{layer}.1.{rest}"
                )
        else:
            raise ValueError(f"no LDM name for UNet key {key!r} (unsupported block type)")
        converted["model.diffusion_model." + new] = value
    return converted


def vae_to_ldm(state_dict: dict[str, Any], config: Any) -> dict[str, Any]:
    """Diffusers AutoencoderKL keys -> LDM ``first_stage_model.*`` keys (inverse of convert_ldm_vae_checkpoint)."""
    from diffusers.loaders.single_file_utils import DIFFUSERS_TO_LDM_MAPPING

    fixed = DIFFUSERS_TO_LDM_MAPPING["vae"]
    num_up = len(config.up_block_types)
    converted: dict[str, Any] = {}
    for key, value in state_dict.items():
        parts = key.split(".")
        coder = parts[0]
        if key in fixed:
            new = fixed[key]
        elif coder in ("quant_conv", "post_quant_conv"):
            new = key
        elif parts[1] == "mid_block":
            index, rest = int(parts[3]), ".".join(parts[4:])
            if parts[2] == "resnets":
                new = f"{coder}.mid.block_{index + 1}." + _rename_head(rest, {"conv_shortcut": "nin_shortcut"})
            else:
                new = f"{coder}.mid.attn_1." + _rename_head(rest, _VAE_ATTENTION_TO_LDM)
                # LDM's AttnBlock uses 1x1 convolutions where diffusers uses linear layers.
                if value.ndim == 2:
                    value = value[:, :, None, None]
        elif parts[1] in ("down_blocks", "up_blocks"):
            block = int(parts[2])
            # LDM numbers decoder blocks from the lowest resolution upwards, diffusers the other way round.
            name, block = ("down", block) if parts[1] == "down_blocks" else ("up", num_up - 1 - block)
            if parts[3] == "resnets":
                rest = _rename_head(".".join(parts[5:]), {"conv_shortcut": "nin_shortcut"})
                new = f"{coder}.{name}.{block}.block.{parts[4]}.{rest}"
            else:  # downsamplers.0.conv.* / upsamplers.0.conv.*
                new = f"{coder}.{name}.{block}.{name}sample." + ".".join(parts[5:])
        else:
            raise ValueError(f"no LDM name for VAE key {key!r}")
        converted["first_stage_model." + new] = value
    return converted


def clip_to_ldm(state_dict: dict[str, Any]) -> dict[str, Any]:
    """Diffusers/transformers CLIPTextModel keys -> SD 1.x ``cond_stage_model.transformer.text_model.*`` keys."""
    # transformers >= 5.6 flattened CLIPTextModel (no "text_model." level); the LDM layout always has it.
    return {
        "cond_stage_model.transformer.text_model." + key.removeprefix("text_model."): value
        for key, value in state_dict.items()
    }


def build_sd_inpaint_single_file(path: Path) -> Path:
    """Write the tiny SD inpainting model as ONE original-layout .safetensors file; return the file.

    ``path`` is a folder: it receives ``tiny-sd-inpainting.safetensors`` plus ``config/``, a weight-less diffusers
    folder (model_index.json, component configs, tokenizer, scheduler) of the same architecture, because
    from_single_file needs diffusers configs and would otherwise try to download them. Load offline with::

        StableDiffusionInpaintPipeline.from_single_file(file, config=str(file.parent / "config"))

    The weights equal build_sd_inpaint's (same seeds), so both loading paths give the same pipeline.
    """
    from diffusers import StableDiffusionInpaintPipeline
    from safetensors.torch import save_file

    pipe = StableDiffusionInpaintPipeline(**_sd_components(in_channels=9))
    config_dir = _save(pipe, path / SINGLE_FILE_CONFIG_DIR)
    for weights in config_dir.glob("*/*.safetensors"):
        weights.unlink()  # configs only: the weights must come from the single file

    checkpoint: dict[str, Any] = {}
    checkpoint.update(unet_to_ldm(pipe.unet.state_dict(), pipe.unet.config))
    checkpoint.update(vae_to_ldm(pipe.vae.state_dict(), pipe.vae.config))
    checkpoint.update(clip_to_ldm(pipe.text_encoder.state_dict()))
    file = path / SINGLE_FILE_NAME
    # save_file rejects non-contiguous or memory-sharing tensors: hand it plain contiguous copies.
    save_file({k: v.detach().contiguous() for k, v in checkpoint.items()}, str(file))
    return file


def single_file_config_dir(file: Path) -> Path:
    """The config folder build_sd_inpaint_single_file writes next to its checkpoint."""
    return file.parent / SINGLE_FILE_CONFIG_DIR


BUILDERS: dict[str, Callable[[Path], Path]] = {
    "sd_inpaint": build_sd_inpaint,
    "sd": build_sd,
    "sdxl_inpaint": build_sdxl_inpaint,
    "sdxl_refiner": build_sdxl_refiner,
    "controlnet": build_controlnet_sd15_inpaint,
    "kandinsky_inpaint": build_kandinsky22_inpaint,
    "sd_inpaint_single_file": build_sd_inpaint_single_file,
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


@pytest.fixture(scope="session")
def tiny_controlnet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build_fixture(tmp_path_factory, "controlnet")


@pytest.fixture(scope="session")
def tiny_kandinsky_inpaint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build_fixture(tmp_path_factory, "kandinsky_inpaint")


@pytest.fixture(scope="session")
def tiny_sd_inpaint_single_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The .safetensors file; its config folder is ``single_file_config_dir(file)``."""
    return _build_fixture(tmp_path_factory, "sd_inpaint_single_file")
