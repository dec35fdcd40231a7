"""Tiny Segment Anything models for tests, built offline with random weights (a pytest plugin: see conftest.py).

`build_tiny_sam(path)` saves a `SamModel` with a few-thousand-parameter encoder and decoder plus its
`SamProcessor` with save_pretrained, exactly the files a downloaded SAM/SlimSAM folder holds (config.json,
model.safetensors, the processor's config), so tests load it through the same code a user's model takes.
The encoder works at 128 px instead of 1024 (the processor is told so): the geometry (longest side resized,
the rest padded, 4x low-resolution masks) is SAM's own.

`hub_cache(root, repo_id, folder)` lays a folder out as huggingface_hub's cache does
(models--owner--name/refs/main + snapshots/<hash>/), for the "installed from the hub" path.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

IMAGE_SIZE = 128  # the tiny encoder's input side (SAM's is 1024)


def build_tiny_sam(path: Path, seed: int = 0) -> Path:
    import torch
    from transformers import SamConfig, SamImageProcessor, SamModel, SamProcessor

    torch.manual_seed(seed)
    config = SamConfig(
        vision_config={
            "hidden_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "mlp_dim": 64,
            "image_size": IMAGE_SIZE,
            "patch_size": 16,
            "output_channels": 32,
            "global_attn_indexes": [1],
            "window_size": 4,
            "num_pos_feats": 16,
        },
        prompt_encoder_config={"hidden_size": 32, "image_size": IMAGE_SIZE, "patch_size": 16, "mask_input_channels": 4},
        mask_decoder_config={
            "hidden_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "mlp_dim": 64,
            "iou_head_hidden_dim": 32,
        },
    )
    model = SamModel(config).eval()
    model.save_pretrained(path)  # model.safetensors + config.json
    processor = SamProcessor(
        SamImageProcessor(size={"longest_edge": IMAGE_SIZE}, pad_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    )
    processor.save_pretrained(path)
    return path


def build_tiny_sam2(path: Path, seed: int = 0, with_processor: bool = True) -> Path:
    """A tiny SAM 2 (Hiera encoder) with its processor; its image processor needs torchvision (without it, pass
    with_processor=False: the folder then has the model alone, like facebook/sam2-hiera-tiny-hf)."""
    import torch
    from transformers import Sam2Config, Sam2ImageProcessor, Sam2Model, Sam2Processor

    torch.manual_seed(seed)
    config = Sam2Config(
        vision_config={
            "backbone_config": {
                "model_type": "sam2_hiera_det_model",
                "hidden_size": 12,
                "num_attention_heads": 1,
                "blocks_per_stage": [1, 2, 2, 1],
                "embed_dim_per_stage": [12, 24, 48, 96],
                "num_attention_heads_per_stage": [1, 1, 1, 1],
                "window_size_per_stage": [4, 4, 4, 4],
                "global_attention_blocks": [4],  # not the first block of a stage (those pool)
                "image_size": [IMAGE_SIZE, IMAGE_SIZE],
                "patch_kernel_size": [7, 7],
                "patch_stride": [4, 4],
                "patch_padding": [3, 3],
            },
            "backbone_channel_list": [96, 48, 24, 12],
            "backbone_feature_sizes": [[32, 32], [16, 16], [8, 8]],
            "fpn_hidden_size": 32,
        },
        prompt_encoder_config={"hidden_size": 32, "image_size": IMAGE_SIZE, "patch_size": 16},
        mask_decoder_config={"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "mlp_dim": 64},
    )
    model = Sam2Model(config).eval()
    model.save_pretrained(path)
    if not with_processor:
        return path
    processor = Sam2Processor(Sam2ImageProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}))
    processor.save_pretrained(path)
    return path


def hub_cache(root: Path, repo_id: str, folder: Path, commit: str = "c" * 40) -> Path:
    """Copy `folder` into a Hugging Face cache at `root` as repo_id's snapshot; returns the snapshot folder."""
    owner, name = repo_id.split("/")
    repo = root / f"models--{owner}--{name}"
    snapshot = repo / "snapshots" / commit
    shutil.copytree(folder, snapshot)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "blobs").mkdir(exist_ok=True)
    return snapshot


@pytest.fixture(scope="session")
def tiny_sam(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_sam(tmp_path_factory.mktemp("tiny-models") / "tiny-sam")


@pytest.fixture
def sam_hub(tmp_path: Path, tiny_sam: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The tiny SAM "installed from the hub" as tiny-org/tiny-sam in a private cache; returns the hub id."""
    import huggingface_hub.constants

    cache = tmp_path / "hf-cache"
    hub_cache(cache, "tiny-org/tiny-sam", tiny_sam)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    return "tiny-org/tiny-sam"
