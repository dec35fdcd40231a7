"""Prompt weighting with compel: weighted prompts -> prompt embeddings for SD and SDXL pipelines.

Syntax (compel's, documented in docs/recipes.md):
- `(word)1.3` or `(several words)0.8`: multiply the attention to those tokens by the number;
- `word+` / `word++` (x1.1 per +), `word-` / `word--` (x0.9 per -), also on a group: `(red apple)++`;
- `("a cat", "a dog").blend(0.7, 0.3)`: a weighted mix of two prompts;
- a literal bracket is written `\\(` and `\\)`.
Weighting is off unless the job asks for it, so plain prompts keep the pipeline's own text encoding.
With it on, a prompt without weights gives the same embeddings as the pipeline's own encoding (tested),
and long prompts are no longer cut at 77 tokens (compel encodes them in chunks).

compel silently reads a malformed weighting as literal text; `check_syntax` refuses it instead, with a
sentence that says where it is.
"""

from __future__ import annotations

import re
from typing import Any

from inpaint_studio.core.errors import BadInputError

# A1111's "(word:1.3)": not compel syntax; compel would read the ":1.3" as words.
_A1111_WEIGHT = re.compile(r"\([^()]*:\s*[0-9.]+\s*\)")


def check_syntax(text: str, label: str = "prompt") -> None:
    """Raise BadInputError when brackets or quotes do not pair up, or A1111 weights are used."""
    match = _A1111_WEIGHT.search(text)
    if match:
        raise BadInputError(
            f"The {label} uses A1111 weighting '{match.group(0)}'; write it the compel way, e.g. (word)1.3."
        )
    depth = 0
    in_quote = False
    escaped = False
    for index, char in enumerate(text):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            in_quote = not in_quote
        elif in_quote:
            continue
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise BadInputError(
                    f"The {label} has a ')' without its '(' at character {index + 1}; "
                    "pair the brackets or write a literal bracket as \\)."
                )
    if in_quote:
        raise BadInputError(f'The {label} has an unclosed " quote; close it or remove it.')
    if depth > 0:
        raise BadInputError(
            f"The {label} has {depth} '(' without a closing ')'; pair the brackets or write a literal one as \\(."
        )


def weighted_embeddings(pipe: Any, prompt: str, negative_prompt: str) -> dict[str, Any]:
    """prompt_embeds / negative_prompt_embeds (and the pooled pair for SDXL) for `pipe`'s call."""
    import torch

    check_syntax(prompt, "prompt")
    check_syntax(negative_prompt, "negative prompt")
    try:
        with torch.no_grad():
            if getattr(pipe, "text_encoder_2", None) is not None:
                return _sdxl(pipe, prompt, negative_prompt)
            if getattr(pipe, "text_encoder", None) is not None and getattr(pipe, "tokenizer", None) is not None:
                return _sd(pipe, prompt, negative_prompt)
    except BadInputError:
        raise
    except Exception as exc:  # compel's parser errors (e.g. a blend with mismatched weights)
        if type(exc).__module__.startswith(("compel", "pyparsing")):
            raise BadInputError(f"The prompt weighting cannot be read ({str(exc)[:120]}); check its syntax.") from exc
        raise
    raise BadInputError(f"Prompt weighting is not available for {type(pipe).__name__}; turn it off for this model.")


def _device(pipe: Any) -> str:
    """Where the text encoders run. With CPU offload they sit on the CPU until called, so compel must be
    told the execution device, or it builds its token tensors on the CPU (measured: a device mismatch)."""
    return str(pipe._execution_device)


def _sd(pipe: Any, prompt: str, negative_prompt: str) -> dict[str, Any]:
    from compel import CompelForSD

    out = CompelForSD(pipe, device=_device(pipe))(prompt, negative_prompt)
    return {"prompt_embeds": out.embeds, "negative_prompt_embeds": out.negative_embeds}


def _sdxl(pipe: Any, prompt: str, negative_prompt: str) -> dict[str, Any]:
    import torch
    from compel import Compel, CompelForSDXL, ReturnedEmbeddingsType

    if getattr(pipe, "text_encoder", None) is not None:
        out = CompelForSDXL(pipe, device=_device(pipe))(prompt, negative_prompt=negative_prompt)
        embeds, pooled = out.embeds, out.pooled_embeds
        negative, negative_pooled = out.negative_embeds, out.negative_pooled_embeds
    else:
        # The refiner has only the second (OpenCLIP) encoder: no CompelForSDXL for it.
        compel = Compel(
            tokenizer=pipe.tokenizer_2,
            text_encoder=pipe.text_encoder_2,
            returned_embeddings_type=ReturnedEmbeddingsType.PENULTIMATE_HIDDEN_STATES_NON_NORMALIZED,
            requires_pooled=True,
            truncate_long_prompts=False,
            device=_device(pipe),
        )
        embeds, pooled = compel(prompt)
        negative, negative_pooled = compel(negative_prompt)
        embeds, negative = compel.pad_conditioning_tensors_to_same_length([embeds, negative])
    if not negative_prompt and getattr(pipe.config, "force_zeros_for_empty_prompt", False):
        # What the SDXL pipelines do for an empty negative prompt: zeros, not the encoding of "".
        negative, negative_pooled = torch.zeros_like(embeds), torch.zeros_like(pooled)
    return {
        "prompt_embeds": embeds,
        "negative_prompt_embeds": negative,
        "pooled_prompt_embeds": pooled,
        "negative_pooled_prompt_embeds": negative_pooled,
    }
