"""LoRAs, textual-inversion embeddings and IP-Adapters on the tiny pipelines: built offline with peft and
diffusers' own converters, loaded through the public path a user's file takes, and taken off exactly."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from inpaint_studio.core.errors import BadInputError, ModelUnavailableError
from inpaint_studio.core.jobspec import Area, MemoryMode
from inpaint_studio.core.parameters import format_parameters, job_overrides_from_parameters, parse_parameters
from inpaint_studio.engine import adapters
from inpaint_studio.engine.addons import lora_text_width, resolve_addon
from inpaint_studio.engine.runner import Engine
from tests.engine.helpers import box_mask, job_for, photo, pixels
from tests.tiny_addons import build_embedding, build_ip_adapter, build_lora, put_in_cache

IMAGE, MASK = photo(64, 64), box_mask(64, 64, (16, 16, 48, 48))
REFERENCE = photo(48, 40, seed=3)


@pytest.fixture(scope="module")
def engine():
    eng = Engine()
    yield eng
    eng.release()


@pytest.fixture(scope="module")
def plain(engine, tiny_sd_inpaint) -> np.ndarray:
    return pixels(engine.run(job_for(tiny_sd_inpaint), IMAGE, MASK).images[0])


def run(engine, model, **kw):
    reference = kw.pop("reference", None)
    extra = {"reference_image": reference} if reference is not None else {}
    return engine.run(job_for(model, **kw), IMAGE, MASK, **extra)


def diff(a, b) -> int:
    return int(np.abs(pixels(a).astype(int) - np.asarray(b).astype(int)).max())


# ---- LoRAs ---------------------------------------------------------------------------------------------------


def test_the_three_key_layouts_give_the_same_pixels_and_leave_no_trace(
    engine, tiny_sd_inpaint, tiny_lora_layouts, plain
):
    results = {
        layout: run(engine, tiny_sd_inpaint, loras=((str(path), 1.0),)) for layout, path in tiny_lora_layouts.items()
    }
    first = pixels(results["diffusers"].images[0])
    assert diff(results["diffusers"].images[0], plain) > 20  # the LoRA changes the picture
    for layout in ("peft", "kohya"):  # the same weights in kohya's / peft's names: the same pixels
        assert np.array_equal(pixels(results[layout].images[0]), first), layout
    record = results["kohya"].extra["loras"][0]
    assert record["weight"] == 1.0 and record["loaded"] and results["kohya"].extra["lora_fused"] is True
    # The next job without LoRAs gets the bare model back, bit for bit (the fused weights were restored).
    assert np.array_equal(pixels(run(engine, tiny_sd_inpaint).images[0]), plain)


def test_weight_zero_gives_exactly_the_pixels_without_the_lora(engine, tiny_sd_inpaint, tiny_lora, plain):
    off = run(engine, tiny_sd_inpaint, loras=((str(tiny_lora), 0.0),))
    assert np.array_equal(pixels(off.images[0]), plain)
    assert off.extra["loras"][0]["loaded"] is False
    other = build_lora(Path(tiny_lora).parent / "other", seed=7)
    alone = run(engine, tiny_sd_inpaint, loras=((str(other), 0.8),))
    with_zero = run(engine, tiny_sd_inpaint, loras=((str(tiny_lora), 0.0), (str(other), 0.8)))
    assert np.array_equal(pixels(with_zero.images[0]), pixels(alone.images[0]))


def test_weights_scale_the_effect_and_several_loras_combine(engine, tiny_sd_inpaint, tiny_lora, plain):
    half = run(engine, tiny_sd_inpaint, loras=((str(tiny_lora), 0.5),))
    full = run(engine, tiny_sd_inpaint, loras=((str(tiny_lora), 1.0),))
    assert diff(half.images[0], plain) > 0 and not np.array_equal(pixels(half.images[0]), pixels(full.images[0]))
    other = build_lora(Path(tiny_lora).parent / "second", seed=9)
    both = run(engine, tiny_sd_inpaint, loras=((str(tiny_lora), 0.5), (str(other), 0.5)))
    assert [entry["weight"] for entry in both.extra["loras"]] == [0.5, 0.5]
    assert not np.array_equal(pixels(both.images[0]), pixels(half.images[0]))
    # The same job again: the same pixels (the set on the model is kept, nothing accumulates).
    assert np.array_equal(
        pixels(run(engine, tiny_sd_inpaint, loras=((str(tiny_lora), 0.5),)).images[0]), pixels(half.images[0])
    )
    assert np.array_equal(pixels(run(engine, tiny_sd_inpaint).images[0]), plain)


def test_the_text_encoder_part_changes_the_result_and_is_undone(engine, tiny_sd_inpaint, tiny_lora, plain):
    run(engine, tiny_sd_inpaint)
    pipe = engine.pipelines.pipelines()[0]
    pipe_encoder_before = {k: v.clone() for k, v in pipe.text_encoder.state_dict().items()}
    with_lora = run(engine, tiny_sd_inpaint, loras=((str(tiny_lora), 1.0),))
    changed = [k for k, v in pipe.text_encoder.state_dict().items() if not (v == pipe_encoder_before[k]).all()]
    assert changed and all("proj" in k for k in changed)  # the q/k/v/out projections took the LoRA
    assert diff(with_lora.images[0], plain) > 0
    run(engine, tiny_sd_inpaint)
    assert all(torch.equal(v, pipe_encoder_before[k]) for k, v in pipe.text_encoder.state_dict().items())


def test_fused_and_unfused_agree_and_unfused_is_undone_too(tiny_sd_inpaint, tiny_lora_layouts):
    """Unfused (the peft layers stay in the UNet) is what sequential offload uses; fused is the default. They
    compute the same LoRA (float rounding apart), and both leave the bare model behind."""
    eng = Engine()
    lora = ((str(tiny_lora_layouts["diffusers"]), 0.7),)
    whole = {"area": Area.WHOLE, "preserve_unmasked": False}
    try:
        bare = run(eng, tiny_sd_inpaint, **whole)
        fused = run(eng, tiny_sd_inpaint, loras=lora, **whole)
        pipe = eng.pipelines.pipelines()[0]
        request = adapters.AddonRequest(loras=((resolve_addon(lora[0][0], "lora"), 0.7),), fuse=False)
        facts = adapters.apply(pipe, request)
        assert facts["lora_fused"] is False and pipe.unet.peft_config
        unfused = pipe(
            prompt="a red apple",
            image=IMAGE,
            mask_image=Image.fromarray(MASK),
            height=64,
            width=64,
            num_inference_steps=2,
            generator=torch.Generator("cpu").manual_seed(7),
            output_type="np",
        ).images[0]
        adapters.release(pipe)
        assert not getattr(pipe.unet, "peft_config", None)
        raw = np.clip(np.rint(unfused * 255.0), 0, 255).astype(np.uint8)
        assert np.abs(raw.astype(int) - pixels(fused.images[0]).astype(int)).max() <= 3
        assert diff(fused.images[0], pixels(bare.images[0])) > 20
        assert np.array_equal(pixels(run(eng, tiny_sd_inpaint, **whole).images[0]), pixels(bare.images[0]))
    finally:
        eng.release()


def test_a_lora_for_another_family_is_one_sentence(engine, tiny_sd_inpaint, tiny_sdxl_lora, plain):
    with pytest.raises(BadInputError) as caught:
        run(engine, tiny_sd_inpaint, loras=((str(tiny_sdxl_lora), 1.0),))
    message = str(caught.value)
    assert "was made for" in message and "choose a LoRA made for it" in message
    assert message.count(". ") == 0 and message.endswith(".")
    assert lora_text_width(Path(tiny_sdxl_lora)) == 64  # the tiny SDXL UNet's text width
    assert np.array_equal(pixels(run(engine, tiny_sd_inpaint).images[0]), plain)  # nothing stayed


def test_sdxl_takes_its_own_loras(tiny_sdxl_inpaint, tiny_sdxl_lora):
    eng = Engine()
    try:
        bare = eng.run(job_for(tiny_sdxl_inpaint), IMAGE, MASK)
        styled = eng.run(job_for(tiny_sdxl_inpaint, loras=((str(tiny_sdxl_lora), 1.0),)), IMAGE, MASK)
        assert diff(styled.images[0], pixels(bare.images[0])) > 0
        again = eng.run(job_for(tiny_sdxl_inpaint), IMAGE, MASK)
        assert np.array_equal(pixels(again.images[0]), pixels(bare.images[0]))
    finally:
        eng.release()


def test_pickled_loras_are_refused_unread(tmp_path, engine, tiny_sd_inpaint):
    for suffix in (".pt", ".bin", ".ckpt"):
        hostile = tmp_path / f"style{suffix}"
        hostile.write_bytes(b"\x80\x04 not read")
        with pytest.raises(ModelUnavailableError, match="pickled file, which can run hidden code"):
            run(engine, tiny_sd_inpaint, loras=((str(hostile), 1.0),))


def test_a_file_that_is_not_a_lora_is_one_sentence(tmp_path, engine, tiny_sd_inpaint, tiny_embedding):
    with pytest.raises(BadInputError, match="is not a LoRA"):
        run(engine, tiny_sd_inpaint, loras=((str(tiny_embedding), 1.0),))
    with pytest.raises(ModelUnavailableError, match="was not found"):
        run(engine, tiny_sd_inpaint, loras=((str(tmp_path / "missing.safetensors"), 1.0),))


def test_hub_loras_come_from_the_cache_or_say_how_to_download(hub_cache, engine, tiny_sd_inpaint, tiny_lora, plain):
    with pytest.raises(ModelUnavailableError) as caught:
        run(engine, tiny_sd_inpaint, loras=(("someone/ink-style", 1.0),))
    assert "is not installed; download it with `inpaint-studio download someone/ink-style`" in str(caught.value)
    put_in_cache(hub_cache, "someone/ink-style", {"pytorch_lora_weights.safetensors": Path(tiny_lora)})
    put_in_cache(hub_cache, "someone/pack", {"a.safetensors": Path(tiny_lora), "b.safetensors": Path(tiny_lora)})
    from_hub = run(engine, tiny_sd_inpaint, loras=(("someone/ink-style", 1.0),))
    from_file = run(engine, tiny_sd_inpaint, loras=((str(tiny_lora), 1.0),))
    assert np.array_equal(pixels(from_hub.images[0]), pixels(from_file.images[0]))
    assert from_hub.extra["loras"][0]["revision"] == "b" * 40
    with pytest.raises(ModelUnavailableError, match="holds several weights files"):
        run(engine, tiny_sd_inpaint, loras=(("someone/pack", 1.0),))
    one = run(engine, tiny_sd_inpaint, loras=(("someone/pack/b.safetensors", 1.0),))
    assert np.array_equal(pixels(one.images[0]), pixels(from_file.images[0]))


def test_the_parameters_text_carries_loras_as_a1111_tags(engine, tiny_sd_inpaint, tiny_lora):
    result = run(engine, tiny_sd_inpaint, loras=((str(tiny_lora), 0.8),), prompt="a red apple")
    record = result.record()
    text = format_parameters(record.job, width=64, height=64, seed=record.seed, model_name="tiny")
    stem = Path(tiny_lora).stem
    assert text.splitlines()[0] == f"a red apple <lora:{stem}:0.8>"
    overrides = job_overrides_from_parameters(parse_parameters(text))
    assert overrides["prompt"] == "a red apple" and overrides["loras"] == ((stem, 0.8),)


# ---- embeddings ----------------------------------------------------------------------------------------------


def test_an_embedding_is_called_by_its_token_and_unloaded_exactly(engine, tiny_sd_inpaint, tmp_path):
    a1111 = build_embedding(tmp_path, layout="a1111")
    diffusers_layout = build_embedding(tmp_path, layout="diffusers")
    prompt = "a tinystyle apple"
    before = run(engine, tiny_sd_inpaint, prompt=prompt)
    pipe = engine.pipelines.pipelines()[0]
    vocabulary, rows = len(pipe.tokenizer), pipe.text_encoder.get_input_embeddings().weight.shape[0]
    styled = run(engine, tiny_sd_inpaint, prompt=prompt, embeddings=((str(a1111), "tinystyle"),))
    assert diff(styled.images[0], pixels(before.images[0])) > 0
    assert styled.extra["embeddings"][0]["token"] == "tinystyle"
    # Without the token in the prompt an embedding changes nothing.
    other_prompt = run(engine, tiny_sd_inpaint, embeddings=((str(a1111), "tinystyle"),))
    assert np.array_equal(pixels(other_prompt.images[0]), pixels(run(engine, tiny_sd_inpaint).images[0]))
    # The file's own token (diffusers' {token: vectors} layout) when none is given.
    own = run(engine, tiny_sd_inpaint, prompt="a <tiny-style> apple", embeddings=((str(diffusers_layout), ""),))
    assert own.extra["embeddings"][0]["token"] == ""
    after = run(engine, tiny_sd_inpaint, prompt=prompt)
    assert np.array_equal(pixels(after.images[0]), pixels(before.images[0]))
    assert len(pipe.tokenizer) == vocabulary and pipe.text_encoder.get_input_embeddings().weight.shape[0] == rows


def test_embeddings_of_the_wrong_kind_are_one_sentence(engine, tiny_sd_inpaint, tmp_path):
    sdxl = build_embedding(tmp_path, layout="sdxl")
    with pytest.raises(BadInputError, match="was made for SDXL"):
        run(engine, tiny_sd_inpaint, embeddings=((str(sdxl), "x"),))
    wide = build_embedding(tmp_path / "wide", layout="a1111", width=768)
    with pytest.raises(BadInputError, match="has vectors of width 768, but this model's text encoder takes 32"):
        run(engine, tiny_sd_inpaint, embeddings=((str(wide), "wide"),))
    with pytest.raises(BadInputError, match="already a word of the model's vocabulary"):
        run(engine, tiny_sd_inpaint, embeddings=((str(build_embedding(tmp_path / "a", layout="a1111")), "a"),))


def test_sdxl_embeddings_go_into_both_text_encoders(tiny_sdxl_inpaint, tmp_path):
    sdxl = build_embedding(tmp_path, layout="sdxl", width=32, width_2=32)
    eng = Engine()
    try:
        bare = eng.run(job_for(tiny_sdxl_inpaint, prompt="a tinyxl apple"), IMAGE, MASK)
        styled = eng.run(
            job_for(tiny_sdxl_inpaint, prompt="a tinyxl apple", embeddings=((str(sdxl), "tinyxl"),)), IMAGE, MASK
        )
        assert diff(styled.images[0], pixels(bare.images[0])) > 0
        with pytest.raises(BadInputError, match="made for SD 1.x/2.x"):
            eng.run(
                job_for(tiny_sdxl_inpaint, embeddings=((str(build_embedding(tmp_path / "sd", layout="a1111")), "t"),)),
                IMAGE,
                MASK,
            )
    finally:
        eng.release()


# ---- IP-Adapter ------------------------------------------------------------------------------------------------


def test_the_reference_image_steers_the_result_inside_the_mask_when_asked(
    engine, tiny_sd_inpaint, tiny_ip_adapter, plain
):
    steered = run(engine, tiny_sd_inpaint, ip_adapter=str(tiny_ip_adapter), ip_adapter_scale=0.8, reference=REFERENCE)
    assert diff(steered.images[0], plain) > 0
    facts = steered.extra["ip_adapter"]
    assert facts["scale"] == 0.8 and facts["image_encoder"].endswith("image_encoder")
    other = run(
        engine, tiny_sd_inpaint, ip_adapter=str(tiny_ip_adapter), ip_adapter_scale=0.8, reference=photo(40, 40, 9)
    )
    assert not np.array_equal(pixels(other.images[0]), pixels(steered.images[0]))  # it reads the reference
    masked = run(
        engine,
        tiny_sd_inpaint,
        ip_adapter=str(tiny_ip_adapter),
        ip_adapter_scale=0.8,
        ip_adapter_masked=True,
        reference=REFERENCE,
    )
    assert not np.array_equal(pixels(masked.images[0]), pixels(steered.images[0]))
    zero = run(engine, tiny_sd_inpaint, ip_adapter=str(tiny_ip_adapter), ip_adapter_scale=0.0, reference=REFERENCE)
    assert np.array_equal(pixels(zero.images[0]), plain)  # scale 0: the reference adds nothing
    after = run(engine, tiny_sd_inpaint)
    assert np.array_equal(pixels(after.images[0]), plain)
    assert engine.pipelines.pipelines()[0].image_encoder is None


def test_an_ip_adapter_without_a_reference_or_for_another_family_is_one_sentence(
    engine, tiny_sd_inpaint, tiny_sdxl_inpaint, tmp_path
):
    adapter = build_ip_adapter(tmp_path / "ip", family="sd")
    with pytest.raises(BadInputError, match="The IP-Adapter needs a reference image"):
        run(engine, tiny_sd_inpaint, ip_adapter=str(adapter))
    sdxl_adapter = build_ip_adapter(tmp_path / "ipxl", family="sdxl")
    # The SDXL adapter file in the SD default place: the family check reads its shapes before anything loads.
    wrong = tmp_path / "wrong"
    shutil.copytree(adapter, wrong)
    shutil.copyfile(
        sdxl_adapter / "sdxl_models/ip-adapter_sdxl_vit-h.safetensors", wrong / "models/ip-adapter_sd15.safetensors"
    )
    with pytest.raises(BadInputError, match="was made for .* models, but this model is"):
        run(engine, tiny_sd_inpaint, ip_adapter=str(wrong), reference=REFERENCE)
    no_encoder = tmp_path / "no-encoder"
    no_encoder.mkdir()
    shutil.copyfile(adapter / "models/ip-adapter_sd15.safetensors", no_encoder / "ip.safetensors")
    with pytest.raises(ModelUnavailableError, match="needs its image encoder"):
        run(engine, tiny_sd_inpaint, ip_adapter=str(no_encoder / "ip.safetensors"), reference=REFERENCE)


def test_sdxl_takes_its_ip_adapter(tiny_sdxl_inpaint, tmp_path):
    adapter = build_ip_adapter(tmp_path / "ipxl", family="sdxl")
    eng = Engine()
    try:
        bare = eng.run(job_for(tiny_sdxl_inpaint), IMAGE, MASK)
        steered = eng.run(job_for(tiny_sdxl_inpaint, ip_adapter=str(adapter)), IMAGE, MASK, reference_image=REFERENCE)
        assert diff(steered.images[0], pixels(bare.images[0])) > 0
    finally:
        eng.release()


def test_everything_at_once_then_nothing(engine, tiny_sd_inpaint, tiny_lora, tiny_ip_adapter, tmp_path, plain):
    embedding = build_embedding(tmp_path, layout="a1111")
    result = run(
        engine,
        tiny_sd_inpaint,
        prompt="a tinystyle apple",
        loras=((str(tiny_lora), 0.6),),
        embeddings=((str(embedding), "tinystyle"),),
        ip_adapter=str(tiny_ip_adapter),
        reference=REFERENCE,
    )
    assert set(result.extra) >= {"loras", "embeddings", "ip_adapter", "lora_fused"}
    assert np.array_equal(pixels(run(engine, tiny_sd_inpaint).images[0]), plain)
    with pytest.raises(BadInputError, match="needs an NVIDIA GPU"):  # offload: checked before anything loads
        run(engine, tiny_sd_inpaint, loras=((str(tiny_lora), 0.6),), memory_mode=MemoryMode.SEQUENTIAL_OFFLOAD)
