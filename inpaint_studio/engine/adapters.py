"""Add-ons on a loaded pipeline: LoRAs, textual-inversion embeddings and an IP-Adapter, put on and taken off
exactly.

The pipeline stays loaded between jobs (loader.PipelineManager), so what one job adds must be gone for the
next: a job without add-ons gives the pixels of the bare model, bit for bit, whatever ran before it.

- LoRAs are read by diffusers (`lora_state_dict` converts the diffusers, kohya and A1111 key layouts), their
  UNet part loaded as peft layers (`load_lora_into_unet`), weighted (`set_adapters`) and, by default, fused
  into the weights (`fuse_lora`, then the LoRA layers are removed): the denoiser then runs at the speed of the
  bare model (benchmarks/gpu_speed.py measures fused against unfused). Their text-encoder part is merged into
  the text encoders' weights directly (see `_merge_text_loras`). Merging changes weights in place, and
  unmerging by subtraction does not give the original floats back, so the original weights of every changed
  layer are kept (on the CPU) and copied back when the LoRAs change. Unfused (sequential offload, where the
  weights are not on the device to merge into) the peft layers stay and are removed when the LoRAs change. A
  LoRA of weight 0 is not loaded at all: the job then gives exactly the pixels of the job without it.
- Embeddings go into the tokenizers and text encoders with `load_textual_inversion` and come out with
  `unload_textual_inversion`, which keeps the original rows and ids.
- The IP-Adapter's image encoder is loaded here (safetensors only, local files only) and registered on every
  pipeline that shares the UNet; the UNet's attention processors are saved before and restored after.

State is kept per UNet (weak references, like speed.py): a released model takes its state with it.
Imports torch, diffusers, transformers and peft inside the functions (the window never imports them).
"""

from __future__ import annotations

import logging
import warnings
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inpaint_studio.core.errors import BadInputError, ModelUnavailableError
from inpaint_studio.engine import speed
from inpaint_studio.engine.addons import (
    AddonFile,
    is_sdxl_lora,
    lora_text_width,
    read_embedding,
    width_name,
)
from inpaint_studio.engine.models import read_safetensors_header

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AddonRequest:
    """What one call needs on its pipeline: resolved files, in order."""

    loras: tuple[tuple[AddonFile, float], ...] = ()
    embeddings: tuple[tuple[AddonFile, str], ...] = ()  # token "" = the file's own, else its name
    ip_adapter: AddonFile | None = None
    ip_scale: float = 0.6
    fuse: bool = True  # fuse LoRAs into the weights (faster steps; see the module docstring)

    @property
    def empty(self) -> bool:
        return not self.loras and not self.embeddings and self.ip_adapter is None


@dataclass
class _State:
    loras: tuple[tuple[str, float], ...] = ()
    fused: bool = False
    originals: list[tuple[Any, Any, Any]] = field(default_factory=list)  # (module, weight copy, bias copy)
    adapter_names: list[str] = field(default_factory=list)
    embeddings: tuple[tuple[str, str], ...] = ()
    loaded_tokens: list[tuple[Any, Any, list[str]]] = field(default_factory=list)  # (tokenizer, encoder, tokens)
    # (encoder, embedding module, its weight tensor, its row count, the config's vocab size) before loading
    input_embeddings: list[tuple[Any, Any, Any, int, int]] = field(default_factory=list)
    ip: tuple[str, str] | None = None
    ip_encoder: Any = None
    ip_processors: dict[str, Any] | None = None
    counter: int = 0


_states: weakref.WeakKeyDictionary[Any, _State] = weakref.WeakKeyDictionary()


def _state(pipe: Any) -> _State:
    unet = speed.original_unet(pipe.unet)
    state = _states.get(unet)
    if state is None:
        state = _states[unet] = _State()
    return state


def apply(pipe: Any, request: AddonRequest, siblings: list[Any] | None = None) -> dict[str, Any]:
    """Put exactly `request` on `pipe` (and its from_pipe `siblings`, which share its modules); returns the
    facts the result records. Raises BadInputError / ModelUnavailableError with one sentence."""
    if getattr(pipe, "unet", None) is None:
        if not request.empty:
            raise BadInputError("LoRAs, embeddings and IP-Adapters work with SD 1.5 and SDXL models; choose one.")
        return {}
    state = _state(pipe)
    pipes = [pipe, *(p for p in (siblings or []) if p is not pipe and getattr(p, "unet", None) is not None)]
    loras = tuple((str(f.path), float(w)) for f, w in request.loras if w != 0)
    fuse = request.fuse
    embeddings = tuple((str(f.path), token) for f, token in request.embeddings)
    ip = (str(request.ip_adapter.path), str(request.ip_adapter.image_encoder)) if request.ip_adapter else None
    changing = (loras, fuse if loras else state.fused) != (state.loras, state.fused) or embeddings != state.embeddings
    changing = changing or ip != state.ip
    if changing:
        # QKV fusion copies the attention weights, slicing and compiling wrap them: back to the plain modules
        # first (speed.apply puts them back for the call).
        speed.plain_modules(pipe)
    if (loras, fuse) != (state.loras, state.fused) and (loras or state.loras):
        _remove_loras(pipe, state)
        if loras:
            _add_loras(pipe, state, [(f, w) for f, w in request.loras if w != 0], fuse)
    if embeddings != state.embeddings:
        _remove_embeddings(pipe, state)
        if request.embeddings:
            _add_embeddings(pipe, state, request.embeddings)
    if ip != state.ip:
        _remove_ip_adapter(pipes, state)
        if request.ip_adapter is not None:
            _add_ip_adapter(pipe, state, request.ip_adapter)
    if state.ip is not None:
        for each in pipes:  # variants built before the adapter was loaded need its encoder too
            _register_encoder(each, state.ip_encoder)
        pipe.set_ip_adapter_scale(request.ip_scale)
    return _facts(request, state)


def release(pipe: Any) -> None:
    """Take every add-on off `pipe` (the bare model again)."""
    apply(pipe, AddonRequest())


# ---- LoRAs ---------------------------------------------------------------------------------------------------


def _check_lora_family(pipe: Any, file: AddonFile) -> None:
    unet_width = int(pipe.unet.config.cross_attention_dim)
    width = lora_text_width(file.path)
    sdxl_pipe = getattr(pipe, "text_encoder_2", None) is not None
    if width is not None and width != unet_width:
        raise BadInputError(
            f"The LoRA {file.name} was made for {width_name(width)} models, but this model is "
            f"{width_name(unet_width)}; choose a LoRA made for it."
        )
    if width is None and is_sdxl_lora(file.path) and not sdxl_pipe:
        raise BadInputError(f"The LoRA {file.name} was made for SDXL models; choose a LoRA made for this model.")


def _add_loras(pipe: Any, state: _State, loras: list[tuple[AddonFile, float]], fuse: bool) -> None:
    if not hasattr(pipe, "load_lora_into_unet"):
        raise BadInputError("LoRAs work with SD 1.5 and SDXL models; choose one of those for this job.")
    names, weights = [], []
    try:
        for file, weight in loras:
            _check_lora_family(pipe, file)
            state.counter += 1
            name = f"addon_{state.counter}"
            lora, alphas, metadata = _read_lora(pipe, file)
            try:
                with warnings.catch_warnings():
                    # Several LoRAs at once are several peft adapters on purpose; peft warns about the second.
                    warnings.filterwarnings("ignore", message="Already found a `peft_config` attribute")
                    pipe.load_lora_into_unet(
                        lora,
                        network_alphas=None if metadata else alphas,
                        unet=pipe.unet,
                        adapter_name=name,
                        metadata=metadata,
                        _pipeline=pipe,
                    )
                merged = _merge_text_loras(pipe, state, lora, alphas, metadata, weight)
            except (ValueError, RuntimeError, KeyError, IndexError, AttributeError) as exc:
                raise BadInputError(
                    f"The LoRA {file.name} does not fit this model ({_first_line(exc)}); it was probably made for "
                    "another model family: choose a LoRA made for this one."
                ) from exc
            in_unet = name in getattr(pipe.unet, "peft_config", {})
            if not in_unet and not merged:
                raise BadInputError(
                    f"None of the LoRA {file.name}'s weights match this model's layers; it was made for another "
                    "kind of model: choose a LoRA made for this one."
                )
            if in_unet:
                names.append(name)
                weights.append(weight)
                state.adapter_names.append(name)
        if names:
            pipe.unet.set_adapters(names, weights=weights)
        state.loras = tuple((str(f.path), float(w)) for f, w in loras)
        if fuse and names:
            _fuse(pipe, state, names)
        state.fused = fuse
    except Exception:
        _remove_loras(pipe, state)  # a half-loaded set must not stay on the model
        raise


def _read_lora(pipe: Any, file: AddonFile) -> tuple[dict[str, Any], dict[str, Any] | None, dict[str, Any] | None]:
    """The LoRA in diffusers' key layout (diffusers' own conversion of kohya / A1111 / peft keys), its alphas and
    the adapter metadata diffusers writes into the file's header; safetensors only."""
    import json

    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        raw = load_file(str(file.path), device="cpu")
    except (OSError, SafetensorError, ValueError) as exc:
        raise ModelUnavailableError(f"The LoRA {file.name} cannot be read ({exc!s:.80}); download it again.") from exc
    header = read_safetensors_header(Path(file.path)).get("__metadata__") or {}
    metadata = None
    if isinstance(header, dict) and header.get("lora_adapter_metadata"):
        try:
            metadata = json.loads(header["lora_adapter_metadata"])
        except ValueError:
            metadata = None
    try:
        lora, alphas = pipe.lora_state_dict(raw)
    except (ValueError, KeyError, IndexError, RuntimeError) as exc:
        raise BadInputError(
            f"{file.name} is not a LoRA this app can read ({_first_line(exc)}); choose a LoRA in the diffusers, "
            "kohya or A1111 format."
        ) from exc
    if not lora or not all("lora" in key for key in lora):
        raise BadInputError(f"{file.name} is not a LoRA (its weights are not LoRA weights); choose a LoRA file.")
    return lora, alphas, metadata


def _merge_text_loras(
    pipe: Any,
    state: _State,
    lora: dict[str, Any],
    alphas: dict[str, Any] | None,
    metadata: dict[str, Any] | None,
    weight: float,
) -> int:
    """Merge the LoRA's text-encoder parts into the text encoders' weights (originals kept; see the module
    docstring). Done here with diffusers' key conversion rather than through transformers' PEFT integration,
    which some transformers / peft pairs refuse; the text encoders run once per job, so nothing is lost by
    merging. Returns how many layers changed."""
    import torch
    from diffusers.utils import convert_state_dict_to_diffusers, convert_state_dict_to_peft

    changed = 0
    for prefix in ("text_encoder", "text_encoder_2"):
        encoder = getattr(pipe, prefix, None)
        part = {k.removeprefix(prefix + "."): v for k, v in lora.items() if k.startswith(prefix + ".")}
        if encoder is None or not part:
            continue
        part = convert_state_dict_to_peft(convert_state_dict_to_diffusers(part))
        alpha_of = _text_alphas(alphas, metadata, prefix)
        modules = dict(encoder.named_modules())
        flattened = not hasattr(encoder, "text_model")
        for key, down in part.items():
            if not key.endswith(".lora_A.weight"):
                continue
            name = key.removesuffix(".lora_A.weight")
            up = part.get(f"{name}.lora_B.weight")
            module = modules.get(name.removeprefix("text_model.") if flattened else name)
            if up is None or module is None or not hasattr(module, "weight"):
                raise ValueError(f"no text encoder layer {name}")
            rank = down.shape[0]
            alpha = alpha_of(name)
            scale = (alpha / rank if alpha else 1.0) * weight
            delta = (up.float() @ down.float()) * scale
            if delta.shape != module.weight.shape:
                raise ValueError(f"{name} is {tuple(delta.shape)}, the model's layer {tuple(module.weight.shape)}")
            if not any(held is module for held, _w, _b in state.originals):
                state.originals.append((module, module.weight.detach().to("cpu", copy=True), None))
            with torch.no_grad():
                module.weight += delta.to(device=module.weight.device, dtype=module.weight.dtype)
            changed += 1
    return changed


def _text_alphas(alphas: dict[str, Any] | None, metadata: dict[str, Any] | None, prefix: str) -> Any:
    """alpha for a text-encoder LoRA layer, the way diffusers' get_peft_kwargs reads network alphas (per
    attention block or per layer) or the adapter metadata (one alpha, or a pattern)."""
    table: dict[str, float] = {}
    for key, value in (alphas or {}).items():
        if key.startswith(prefix + ".") and key.split(".")[0] == prefix:
            base = key.removeprefix(prefix + ".").split(".down.")[0]
            table[base.rsplit(".", 1)[0]] = float(value)
    default = None
    if metadata:
        default = metadata.get(f"{prefix}.lora_alpha") or metadata.get("lora_alpha")

    def alpha_of(name: str) -> float | None:
        for candidate in (name, name.rsplit(".", 1)[0]):
            if candidate in table:
                return table[candidate]
        return float(default) if default else None

    return alpha_of


def _fuse(pipe: Any, state: _State, names: list[str]) -> None:
    """Fuse the UNet's LoRA layers into its weights, keeping a CPU copy of every weight that changes, then drop
    the LoRA layers (and their cost per step)."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    for module in pipe.unet.modules():
        if isinstance(module, BaseTunerLayer):
            base = module.get_base_layer()
            bias = base.bias.detach().to("cpu", copy=True) if getattr(base, "bias", None) is not None else None
            state.originals.append((base, base.weight.detach().to("cpu", copy=True), bias))
    pipe.unet.fuse_lora(adapter_names=names)
    pipe.unet.unload_lora()
    state.adapter_names = []


def _remove_loras(pipe: Any, state: _State) -> None:
    import torch

    if state.originals:
        with torch.no_grad():
            for module, weight, bias in state.originals:
                module.weight.copy_(weight.to(module.weight.device))
                if bias is not None:
                    module.bias.copy_(bias.to(module.bias.device))
    if state.adapter_names or getattr(pipe.unet, "peft_config", None):
        pipe.unet.unload_lora()
    state.originals, state.adapter_names, state.loras, state.fused = [], [], (), False


# ---- embeddings ----------------------------------------------------------------------------------------------


def _encoders(pipe: Any) -> list[tuple[Any, Any]]:
    pairs = [(getattr(pipe, "tokenizer", None), getattr(pipe, "text_encoder", None))]
    pairs.append((getattr(pipe, "tokenizer_2", None), getattr(pipe, "text_encoder_2", None)))
    return [(tok, enc) for tok, enc in pairs if tok is not None and enc is not None]


def _add_embeddings(pipe: Any, state: _State, embeddings: tuple[tuple[AddonFile, str], ...]) -> None:
    if not hasattr(pipe, "load_textual_inversion"):
        raise BadInputError("Embeddings work with SD 1.5 and SDXL models; choose one of those for this job.")
    pairs = _encoders(pipe)
    try:
        for file, token in embeddings:
            vectors = read_embedding(file.path)
            word = token or vectors.own_token or Path(file.path).stem
            per_encoder = [vectors.vectors, vectors.vectors_2]
            sdxl_pipe = len(pairs) == 2 and getattr(pipe, "text_encoder", None) is not None
            if sdxl_pipe and vectors.vectors_2 is None:
                raise BadInputError(
                    f"The embedding {file.name} was made for SD 1.x/2.x (one text encoder); SDXL needs an SDXL "
                    "embedding (clip_l and clip_g)."
                )
            if not sdxl_pipe and vectors.vectors_2 is not None:
                raise BadInputError(f"The embedding {file.name} was made for SDXL; choose one made for this model.")
            for (tokenizer, encoder), tensor in zip(pairs, per_encoder):
                width = encoder.get_input_embeddings().weight.shape[1]
                if tensor.shape[1] != width:
                    raise BadInputError(
                        f"The embedding {file.name} has vectors of width {tensor.shape[1]}, but this model's text "
                        f"encoder takes {width}; choose an embedding made for this model."
                    )
                if word in tokenizer.get_vocab():
                    raise BadInputError(
                        f"The embedding token '{word}' is already a word of the model's vocabulary; give the "
                        "embedding another token (FILE:TOKEN)."
                    )
                tokens = [word] + [f"{word}_{i}" for i in range(1, tensor.shape[0])]
                if not any(held[0] is encoder for held in state.input_embeddings):
                    # Loading resizes the embedding table (transformers swaps the module's weight tensor): keep the
                    # original tensor to put it back, rows beyond the tokenizer's included.
                    table = encoder.get_input_embeddings()
                    state.input_embeddings.append(
                        (encoder, table, table.weight.data, table.num_embeddings, encoder.config.vocab_size)
                    )
                try:
                    pipe.load_textual_inversion(
                        {word: tensor.to(encoder.dtype)}, token=word, tokenizer=tokenizer, text_encoder=encoder
                    )
                except ValueError as exc:
                    raise BadInputError(f"The embedding {file.name} could not be loaded ({_first_line(exc)}).") from exc
                state.loaded_tokens.append((tokenizer, encoder, tokens))
        state.embeddings = tuple((str(f.path), token) for f, token in embeddings)
    except Exception:
        _remove_embeddings(pipe, state)
        raise


def _remove_embeddings(pipe: Any, state: _State) -> None:
    for tokenizer, encoder, tokens in reversed(state.loaded_tokens):
        pipe.unload_textual_inversion(tokens=tokens, tokenizer=tokenizer, text_encoder=encoder)
    for encoder, table, weight, rows, vocab_size in state.input_embeddings:  # the original table, not a copy
        encoder.set_input_embeddings(table)
        table.weight.data = weight
        table.num_embeddings = rows
        encoder.config.vocab_size = vocab_size
    state.loaded_tokens, state.input_embeddings, state.embeddings = [], [], ()


# ---- IP-Adapter ----------------------------------------------------------------------------------------------


def _add_ip_adapter(pipe: Any, state: _State, adapter: AddonFile) -> None:
    from safetensors import safe_open
    from transformers import CLIPVisionModelWithProjection

    if not hasattr(pipe, "load_ip_adapter"):
        raise BadInputError("IP-Adapters work with SD 1.5 and SDXL models; choose one of those for this job.")
    weights: dict[str, dict[str, Any]] = {"image_proj": {}, "ip_adapter": {}}
    try:
        with safe_open(str(adapter.path), framework="pt", device="cpu") as handle:
            for key in handle.keys():  # noqa: SIM118 (safe_open has no __iter__)
                head, _, rest = key.partition(".")
                if head in weights:
                    weights[head][rest] = handle.get_tensor(key)
    except (OSError, ValueError) as exc:
        raise ModelUnavailableError(
            f"The IP-Adapter {adapter.name} cannot be read ({exc!s:.80}); download it again."
        ) from exc
    if not weights["image_proj"] or not weights["ip_adapter"]:
        raise BadInputError(f"{adapter.name} is not an IP-Adapter (it has no image_proj / ip_adapter weights).")
    unet_width = int(pipe.unet.config.cross_attention_dim)
    key_weights = [t for k, t in weights["ip_adapter"].items() if k.endswith("to_k_ip.weight")]
    if key_weights and key_weights[0].shape[1] != unet_width:
        raise BadInputError(
            f"The IP-Adapter {adapter.name} was made for {width_name(int(key_weights[0].shape[1]))} models, but "
            f"this model is {width_name(unet_width)}; choose the IP-Adapter made for it."
        )
    try:
        encoder = CLIPVisionModelWithProjection.from_pretrained(
            str(adapter.image_encoder), dtype=pipe.dtype, use_safetensors=True, local_files_only=True
        ).to(pipe.unet.device)
    except (OSError, ValueError) as exc:
        raise ModelUnavailableError(
            f"The IP-Adapter's image encoder in {adapter.image_encoder} cannot be loaded ({_first_line(exc)}); "
            "download the adapter again."
        ) from exc
    state.ip_processors = dict(speed.original_unet(pipe.unet).attn_processors)
    _register_encoder(pipe, encoder)
    try:
        pipe.load_ip_adapter(weights, subfolder=None, weight_name=None)
    except (ValueError, RuntimeError, KeyError) as exc:
        state.ip_encoder = encoder
        _remove_ip_adapter([pipe], state)
        raise BadInputError(
            f"The IP-Adapter {adapter.name} does not fit this model ({_first_line(exc)}); choose the one made for it."
        ) from exc
    state.ip, state.ip_encoder = (str(adapter.path), str(adapter.image_encoder)), encoder


def _register_encoder(pipe: Any, encoder: Any) -> None:
    from transformers import CLIPImageProcessor

    if not hasattr(pipe, "image_encoder") or encoder is None:
        return
    if pipe.image_encoder is not encoder:
        pipe.register_modules(image_encoder=encoder)
    if getattr(pipe, "feature_extractor", None) is None:
        size = encoder.config.image_size
        pipe.register_modules(feature_extractor=CLIPImageProcessor(size=size, crop_size=size))


def _remove_ip_adapter(pipes: list[Any], state: _State) -> None:
    if state.ip_encoder is None and state.ip is None:
        return
    base = pipes[0]
    unet = speed.original_unet(base.unet)
    unet.encoder_hid_proj = None
    unet.config.encoder_hid_dim_type = None
    if state.ip_processors is not None:
        unet.set_attn_processor(state.ip_processors)
    for pipe in pipes:
        if getattr(pipe, "image_encoder", None) is not None:
            pipe.register_modules(image_encoder=None)
        if getattr(pipe, "feature_extractor", None) is not None and getattr(pipe, "safety_checker", None) is None:
            pipe.register_modules(feature_extractor=None)
    state.ip, state.ip_encoder, state.ip_processors = None, None, None


# ---- call arguments and facts --------------------------------------------------------------------------------


def ip_adapter_masks(mask: Any, width: int, height: int) -> list[Any]:
    """diffusers' `ip_adapter_masks` for one adapter and one reference image: the job's mask at the working size."""
    from diffusers.image_processor import IPAdapterMaskProcessor

    masks = IPAdapterMaskProcessor().preprocess([mask], height=height, width=width)
    return [masks.reshape(1, masks.shape[0], masks.shape[2], masks.shape[3])]


def _facts(request: AddonRequest, state: _State) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if request.loras:
        out["loras"] = [{**file.to_dict(), "weight": weight, "loaded": weight != 0} for file, weight in request.loras]
        out["lora_fused"] = state.fused
    if request.embeddings:
        out["embeddings"] = [{**file.to_dict(), "token": token} for file, token in request.embeddings]
    if request.ip_adapter is not None:
        out["ip_adapter"] = {**request.ip_adapter.to_dict(), "scale": request.ip_scale}
    return out


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:120]
