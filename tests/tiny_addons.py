"""Tiny add-ons for the tiny pipelines of tests/tiny_models.py, built offline with random weights.

- LoRAs made with peft on the tiny UNets (and text encoder), saved in the three key layouts diffusers reads:
  diffusers' own (`save_lora_weights`), peft's (`lora_A`/`lora_B`) and kohya's/A1111's (`lora_unet_...`,
  `lora_down`/`lora_up`, `alpha`);
- textual-inversion embeddings in A1111's ("emb_params"), diffusers' ({token: vectors}) and SDXL's
  ("clip_l"/"clip_g") layouts;
- IP-Adapters laid out like h94/IP-Adapter (`models/ip-adapter_sd15.safetensors` + `models/image_encoder/`):
  an ImageProjection and one to_k_ip/to_v_ip pair per cross-attention, numbered as diffusers' converter
  expects, and a tiny CLIP vision encoder saved with save_pretrained.
Everything is .safetensors and loads through the same public path a user's file takes.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.tiny_models import _sd_unet, _sdxl_unet, _text_config

LORA_RANK = 4


def _peft_unet_lora(unet: Any, seed: int) -> dict[str, Any]:
    import torch
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    torch.manual_seed(seed)
    config = LoraConfig(
        r=LORA_RANK,
        lora_alpha=LORA_RANK,
        target_modules=["to_q", "to_k", "to_v", "to_out.0"],
        init_lora_weights=False,  # random A and B: the LoRA changes the output (peft's default B is zero)
    )
    unet.add_adapter(config)
    with torch.no_grad():  # visible through a tiny random model, yet well-conditioned (fused = unfused to ~1e-6)
        for name, param in unet.named_parameters():
            if "lora_B" in name:
                param.mul_(3.0)
    return get_peft_model_state_dict(unet)


def _peft_text_lora(seed: int) -> dict[str, Any]:
    import torch
    from peft import LoraConfig, inject_adapter_in_model
    from peft.utils import get_peft_model_state_dict
    from transformers import CLIPTextModel

    torch.manual_seed(0)
    encoder = CLIPTextModel(_text_config())
    torch.manual_seed(seed)
    config = LoraConfig(
        r=LORA_RANK,
        lora_alpha=LORA_RANK,
        target_modules=["q_proj", "k_proj", "v_proj", "out_proj"],
        init_lora_weights=False,
    )
    inject_adapter_in_model(config, encoder)  # peft itself: the keys are the encoder's own module names
    with torch.no_grad():
        for name, param in encoder.named_parameters():
            if "lora_B" in name:
                param.mul_(3.0)
    return get_peft_model_state_dict(encoder)


def build_lora(path: Path, *, family: str = "sd", layout: str = "diffusers", seed: int = 1, text: bool = False) -> Path:
    """A LoRA for the tiny SD ("sd") or SDXL ("sdxl") inpainting UNet; returns the .safetensors file."""
    import torch
    from diffusers import StableDiffusionInpaintPipeline
    from diffusers.utils import convert_state_dict_to_diffusers
    from safetensors.torch import save_file

    torch.manual_seed(0)
    unet = _sd_unet(9) if family == "sd" else _sdxl_unet(9, refiner=False)
    peft_state = _peft_unet_lora(unet, seed)
    path.mkdir(parents=True, exist_ok=True)
    name = f"tiny-{family}-{layout}-{seed}{'-te' if text else ''}.safetensors"
    if layout == "diffusers":
        text_layers = convert_state_dict_to_diffusers(_peft_text_lora(seed)) if text else None
        StableDiffusionInpaintPipeline.save_lora_weights(
            path,
            unet_lora_layers=convert_state_dict_to_diffusers(peft_state),
            text_encoder_lora_layers=text_layers,
            weight_name=name,
            safe_serialization=True,
        )
        return path / name
    if layout == "peft":
        state = {f"unet.{key}": value for key, value in peft_state.items()}
    elif layout == "kohya":
        state = {}
        for key, value in peft_state.items():
            module, _, rest = key.partition(".lora_")
            kohya = "lora_unet_" + module.replace(".", "_")
            state[f"{kohya}.lora_down.weight" if rest.startswith("A") else f"{kohya}.lora_up.weight"] = value
            state[f"{kohya}.alpha"] = torch.tensor(float(LORA_RANK))
    else:
        raise ValueError(layout)
    save_file({k: v.detach().contiguous() for k, v in state.items()}, str(path / name))
    return path / name


def build_embedding(path: Path, *, layout: str = "a1111", width: int = 32, width_2: int = 32, vectors: int = 2) -> Path:
    """A textual-inversion embedding of `vectors` vectors; "sdxl" writes clip_l / clip_g."""
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(3)
    path.mkdir(parents=True, exist_ok=True)
    if layout == "a1111":
        state = {"emb_params": torch.randn(vectors, width) * 3}
    elif layout == "diffusers":
        state = {"<tiny-style>": torch.randn(vectors, width) * 3}
    elif layout == "sdxl":
        state = {"clip_l": torch.randn(vectors, width) * 3, "clip_g": torch.randn(vectors, width_2) * 3}
    else:
        raise ValueError(layout)
    file = path / f"tiny-embedding-{layout}.safetensors"
    save_file(state, str(file))
    return file


IMAGE_EMBED_DIM = 16


def build_ip_adapter(path: Path, *, family: str = "sd") -> Path:
    """A repository folder like h94/IP-Adapter with one adapter for the tiny SD or SDXL UNet; returns the folder.

    The adapter's file is where `engine.addons.IP_ADAPTER_DEFAULTS` looks for the family's default."""
    import torch
    from safetensors.torch import save_file
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    from inpaint_studio.engine.addons import IP_ADAPTER_DEFAULTS

    torch.manual_seed(0)
    unet = _sd_unet(9) if family == "sd" else _sdxl_unet(9, refiner=False)
    cross = unet.config.cross_attention_dim
    torch.manual_seed(5)
    state: dict[str, Any] = {
        "image_proj.proj.weight": torch.randn(4 * cross, IMAGE_EMBED_DIM) * 0.5,
        "image_proj.proj.bias": torch.zeros(4 * cross),
        "image_proj.norm.weight": torch.ones(cross),
        "image_proj.norm.bias": torch.zeros(cross),
    }
    key_id = 1
    for name in unet.attn_processors:  # diffusers' converter numbers the cross-attentions 1, 3, 5, ...
        if name.endswith("attn1.processor"):
            continue
        attention = unet.get_submodule(name.removesuffix(".processor"))
        shape = tuple(attention.to_k.weight.shape)
        state[f"ip_adapter.{key_id}.to_k_ip.weight"] = torch.randn(shape) * 0.5
        state[f"ip_adapter.{key_id}.to_v_ip.weight"] = torch.randn(shape) * 0.5
        key_id += 2
    weights = path / IP_ADAPTER_DEFAULTS[family]
    weights.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(weights))
    torch.manual_seed(0)
    encoder = CLIPVisionModelWithProjection(
        CLIPVisionConfig(
            hidden_size=32,
            image_size=32,
            patch_size=8,
            projection_dim=IMAGE_EMBED_DIM,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=2,
        )
    )
    encoder.save_pretrained(path / "models" / "image_encoder", safe_serialization=True)
    return path


def build_upscaler_weights(path: Path, scale: int = 2) -> Path:
    """A tiny Real-ESRGAN-style RRDBNet (ESRGAN keys) with random weights, for spandrel; needs spandrel's arch."""
    import torch
    from safetensors.torch import save_file
    from spandrel.architectures.ESRGAN import ESRGAN

    torch.manual_seed(0)
    net = ESRGAN(in_nc=3, out_nc=3, num_filters=8, num_blocks=1, scale=scale)
    path.mkdir(parents=True, exist_ok=True)
    file = path / f"tiny-esrgan-x{scale}.safetensors"
    save_file({k: v.detach().contiguous() for k, v in net.state_dict().items()}, str(file))
    return file


def build_sd_x4_upscaler(path: Path) -> Path:
    """A tiny StableDiffusionUpscalePipeline (diffusers' own test components), saved as a diffusers folder."""
    import torch
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        DDPMScheduler,
        StableDiffusionUpscalePipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextModel

    from tests.tiny_models import make_tokenizer

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 32, 64),
        layers_per_block=2,
        sample_size=32,
        in_channels=7,  # latents + the low-resolution image
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=8,
        use_linear_projection=True,
        only_cross_attention=(True, True, False),
        num_class_embeds=100,  # the noise level
    )
    torch.manual_seed(0)
    vae = AutoencoderKL(  # three blocks: a scale factor of 4, the upscaler's factor
        block_out_channels=[32, 32, 64],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * 3,
        up_block_types=["UpDecoderBlock2D"] * 3,
        latent_channels=4,
        scaling_factor=0.08333,  # the real x4 upscaler's
    )
    torch.manual_seed(0)
    text_encoder = CLIPTextModel(_text_config(hidden_act="gelu", projection_dim=512))
    pipe = StableDiffusionUpscalePipeline(
        unet=unet,
        low_res_scheduler=DDPMScheduler(),
        scheduler=DDIMScheduler(prediction_type="v_prediction"),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=make_tokenizer(),
        max_noise_level=350,
    )
    path.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(path, safe_serialization=True)
    return path


# ---- a private Hugging Face cache ---------------------------------------------------------------------------
REVISION = "b" * 40


def put_in_cache(cache: Path, repo_id: str, files: dict[str, Path]) -> Path:
    """Place `files` (path in the repository -> local file) in `cache` as the snapshot of `repo_id`."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / REVISION
    for name, source in files.items():
        target = snapshot / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            shutil.copyfile(source, target)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(REVISION)
    (repo / "blobs").mkdir(exist_ok=True)
    return snapshot


@pytest.fixture
def hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty private hub cache that huggingface_hub reads from for the test."""
    import huggingface_hub.constants as constants

    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    return cache


# ---- session fixtures -----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def tiny_lora(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_lora(tmp_path_factory.mktemp("lora"), family="sd", layout="diffusers", seed=1, text=True)


@pytest.fixture(scope="session")
def tiny_lora_layouts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("lora_layouts")
    return {layout: build_lora(root, layout=layout, seed=2) for layout in ("diffusers", "peft", "kohya")}


@pytest.fixture(scope="session")
def tiny_sdxl_lora(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_lora(tmp_path_factory.mktemp("sdxl_lora"), family="sdxl", seed=4)


@pytest.fixture(scope="session")
def tiny_embedding(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_embedding(tmp_path_factory.mktemp("embedding"), layout="a1111")


@pytest.fixture(scope="session")
def tiny_ip_adapter(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_ip_adapter(tmp_path_factory.mktemp("ip_adapter"), family="sd")
