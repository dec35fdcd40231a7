"""The add-on job fields (LoRAs, embeddings, IP-Adapter, fast mode, speed preset): checks, plain data, the A1111
parameters text, and the command line's options for them."""

from __future__ import annotations

import json

import pytest

from inpaint_studio.cli import build_parser
from inpaint_studio.cli.job_options import embedding_item, job_from_args, lora_item
from inpaint_studio.core.errors import BadInputError
from inpaint_studio.core.jobspec import InpaintJob, SpeedOptions
from inpaint_studio.core.parameters import (
    addon_name,
    format_parameters,
    job_overrides_from_parameters,
    parse_parameters,
    split_lora_tags,
)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"loras": (("a.safetensors", 7.0),)},
            "The weight of the LoRA a.safetensors is 7.0; use a value between -5 and 5",
        ),
        ({"loras": (("a.safetensors", float("nan")),)}, "The weight of the LoRA a.safetensors is nan"),
        ({"loras": ((" ", 1.0),)}, "A LoRA has no file or hub id"),
        ({"loras": (("x/y", 1.0), ("x/y", 0.5))}, "The LoRA x/y is listed twice"),
        ({"loras": tuple((f"l{i}.safetensors", 1.0) for i in range(9))}, "9 LoRAs are listed; use at most 8"),
        ({"embeddings": (("e.safetensors", "two words"),)}, "must be one word without spaces"),
        ({"embeddings": (("", "tok"),)}, "An embedding has no file or hub id"),
        ({"embeddings": (("a.safetensors", "t"), ("b.safetensors", "t"))}, "The embedding t is listed twice"),
        ({"ip_adapter": ""}, "The IP-Adapter is empty"),
        ({"ip_adapter_scale": 2.5}, "Reference scale is 2.5; use a value between 0 and 2"),
        ({"fast": "fastest"}, "Fast mode 'fastest' is unknown"),
        (
            {"speed": SpeedOptions(preset="ludicrous")},
            "Speed preset 'ludicrous' is unknown; use one of: default, fastest",
        ),
        ({"speed": SpeedOptions(fuse_qkv="yes")}, "Fuse qkv 'yes' is unknown; use auto, on or off"),
    ],
)
def test_each_bad_addon_value_is_one_sentence(changes, message):
    problems = InpaintJob(model="a/b", **changes).problems()
    assert len(problems) == 1 and message in problems[0], problems
    assert problems[0].endswith(".") and "\n" not in problems[0]


def test_addons_round_trip_as_plain_json_and_old_records_have_none():
    job = InpaintJob(
        model="a/b",
        loras=(("ink.safetensors", 0.8), ("owner/lora", -0.25)),
        embeddings=(("bad.safetensors", "badhands"), ("owner/concept", "")),
        ip_adapter="h94/IP-Adapter",
        ip_adapter_scale=0.5,
        ip_adapter_masked=True,
        fast="tcd",
        speed=SpeedOptions(preset="fastest", fuse_qkv="off"),
    )
    data = json.loads(json.dumps(job.to_dict()))
    assert data["loras"] == [["ink.safetensors", 0.8], ["owner/lora", -0.25]]
    assert InpaintJob.from_dict(data) == job
    assert job.to_dict() == data  # to_dict is already the plain JSON form
    old = InpaintJob.from_dict({"model": "a/b"})
    assert (old.loras, old.embeddings, old.ip_adapter, old.fast) == ((), (), None, "off")
    # A bare reference means weight 1 / the file's own token; whole numbers are weights too.
    short = InpaintJob.from_dict({"loras": ["ink.safetensors", ["x/y", 1]], "embeddings": ["bad.safetensors"]})
    assert short.loras == (("ink.safetensors", 1.0), ("x/y", 1.0)) and short.embeddings == (("bad.safetensors", ""),)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"loras": "ink.safetensors"}, "'loras' must be a list of [file or hub id, weight] pairs"),
        (
            {"loras": [["ink.safetensors"]]},
            "An entry of 'loras' is ['ink.safetensors']; it must be a [file or hub id, weight] pair",
        ),
        ({"loras": [["ink.safetensors", "0.8"]]}, "The job setting 'loras weight' is '0.8'; it must be a number"),
        ({"loras": [["ink.safetensors", True]]}, "it must be a number"),
        ({"loras": [[3, 0.5]]}, "'loras file or hub id' is 3; it must be text"),
        ({"embeddings": [["e.safetensors", 5]]}, "'embeddings token' is 5; it must be text"),
        ({"embeddings": {"e": "t"}}, "'embeddings' must be a list of [file or hub id, token] pairs"),
        ({"ip_adapter_scale": "strong"}, "'ip_adapter_scale' is 'strong'; it must be a number"),
        ({"ip_adapter_masked": "yes"}, "'ip_adapter_masked' is 'yes'; it must be true or false"),
        ({"speed": {"preset": 1}}, "'preset' is 1; it must be text"),
    ],
)
def test_nested_values_from_files_are_type_checked(data, message):
    with pytest.raises(BadInputError) as caught:
        InpaintJob.from_dict(data)
    assert message in str(caught.value)


def test_lora_tags_round_trip_through_the_parameters_text():
    job = InpaintJob(
        model="a/b",
        prompt="a cat, ink",
        loras=(("/loras/Ink Wash.safetensors", 0.8), ("owner/style-lora", 1.0)),
        embeddings=(("/emb/bad-hands.safetensors", "badhands"),),
        ip_adapter="h94/IP-Adapter",
        ip_adapter_scale=0.45,
        fast="lcm",
    )
    text = format_parameters(job, width=512, height=512, seed=1, model_name="m")
    assert text.splitlines()[0] == "a cat, ink <lora:Ink Wash:0.8> <lora:owner/style-lora:1.0>"
    parsed = parse_parameters(text)
    assert parsed["Fast"] == "lcm" and parsed["IP-Adapter"] == "h94/IP-Adapter" and parsed["IP-Adapter scale"] == "0.45"
    overrides = job_overrides_from_parameters(parsed)
    assert overrides["prompt"] == "a cat, ink"
    assert overrides["loras"] == (("Ink Wash", 0.8), ("owner/style-lora", 1.0))
    assert overrides["embeddings"] == (("bad-hands", "badhands"),)
    assert overrides["fast"] == "lcm" and overrides["ip_adapter"] == "h94/IP-Adapter"
    assert overrides["ip_adapter_scale"] == 0.45 and overrides["ip_adapter_masked"] is False
    # Without add-ons the text is what it always was.
    plain = format_parameters(InpaintJob(prompt="a cat"), width=8, height=8, seed=1, model_name="m")
    assert "lora" not in plain and "Fast" not in plain


def test_split_lora_tags_reads_a1111_prompts():
    assert split_lora_tags("a cat <lora:ink:0.6> <lora:grain>") == ("a cat", [("ink", 0.6), ("grain", 1.0)])
    assert split_lora_tags("<lora:ink:0.6> a cat") == ("a cat", [("ink", 0.6)])
    assert split_lora_tags("a <lora:ink:0.5> cat") == ("a cat", [("ink", 0.5)])
    assert split_lora_tags("an email <me@x>") == ("an email <me@x>", [])
    assert addon_name("C:\\loras\\ink.safetensors") == "ink" and addon_name("owner/name") == "owner/name"


def test_the_command_line_reads_repeatable_add_on_options(tmp_path):
    existing = tmp_path / "C-drive:style.safetensors"  # a real file whose name has a colon is taken whole
    existing.write_bytes(b"")
    assert lora_item("ink.safetensors:0.6") == ["ink.safetensors", 0.6]
    assert lora_item("owner/name") == ["owner/name", 1.0]
    assert lora_item(str(existing)) == [str(existing), 1.0]
    assert lora_item("C:\\loras\\ink.safetensors") == ["C:\\loras\\ink.safetensors", 1.0]
    assert embedding_item("bad.safetensors:badhands") == ["bad.safetensors", "badhands"]
    assert embedding_item("owner/concept:cat-toy") == ["owner/concept", "cat-toy"]
    assert embedding_item("C:\\emb\\bad.safetensors") == ["C:\\emb\\bad.safetensors", ""]
    parser = build_parser()
    args = parser.parse_args(
        [
            "inpaint", "in.png", "--mask", "m.png", "-o", "o.png", "--model", "a/b",
            "--lora", "ink.safetensors:0.6", "--lora", "owner/grain",
            "--embedding", "bad.safetensors:badhands", "--ip-adapter", "h94/IP-Adapter",
            "--reference-scale", "0.4", "--reference-masked", "--fast", "--speed-preset", "fastest",
        ]
    )  # fmt: skip
    job = job_from_args(args)
    assert job.loras == (("ink.safetensors", 0.6), ("owner/grain", 1.0))
    assert job.embeddings == (("bad.safetensors", "badhands"),)
    assert (job.ip_adapter, job.ip_adapter_scale, job.ip_adapter_masked) == ("h94/IP-Adapter", 0.4, True)
    assert job.fast == "lcm" and job.speed.preset == "fastest"
    other = job_from_args(parser.parse_args(["inpaint", "i", "--mask", "m", "-o", "o", "--fast-mode", "hyper"]))
    assert other.fast == "hyper"
    with pytest.raises(BadInputError, match="The weight of the LoRA ink.safetensors is 9.0"):
        job_from_args(parser.parse_args(["inpaint", "i", "--mask", "m", "-o", "o", "--lora", "ink.safetensors:9"]))
