"""MI-GAN's 512 px generator, layer for layer, with random weights: for timing its ONNX pipeline here.

The published MI-GAN file is an ONNX graph we cannot download on this machine, and the tests' tiny network
says nothing about speed. This is the architecture of the authors' inference generator (Picsart-AI-Research/
MI-GAN, lib/model_zoo/migan_inference.py) written out again: an encoder of separable convolutions (a 3x3
depth-wise and a 1x1 point-wise convolution each) from 512 px down to 4 px, and a synthesis network back up
with [1, 3, 3, 1] FIR up/down-sampling, constant noise, a leaky ReLU with gain sqrt(2) clamped at 256, and
RGB skip outputs. Channels: min(32768 / resolution, 512) per level. Same layer shapes, so the same work; the
weights are random (speed does not depend on their values).

`MiGanPipeline` wraps it like the authors' ONNX pipeline (scripts/create_onnx_pipeline.py): uint8 image and
mask (255 = known) in, resize to 512, [-1, 1] input with the mask channel, resize back, blend the known
pixels, uint8 result out. Their v2 pipeline also crops around the hole first; the engine already hands it a
crop at about 512 px, which that step leaves as it is, so it is left out here.
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import nn

_FIR = torch.tensor([1.0, 3.0, 3.0, 1.0])


def _fir(channels: int, gain: float) -> torch.Tensor:
    kernel = torch.outer(_FIR, _FIR)
    kernel = kernel / kernel.sum() * gain
    return kernel.expand(channels, 1, 4, 4).clone()


def _act(x: torch.Tensor) -> torch.Tensor:
    return (F.leaky_relu(x, 0.2) * math.sqrt(2)).clamp(-256, 256)


class Down(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 4, stride=2, padding=1, groups=channels, bias=False)
        self.conv.weight.data = _fir(channels, 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Up(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.zeros = nn.ConvTranspose2d(channels, channels, 2, stride=2, groups=channels, bias=False)
        self.zeros.weight.data = torch.tensor([[1.0, 0.0], [0.0, 0.0]]).expand(channels, 1, 2, 2).clone()
        self.conv = nn.Conv2d(channels, channels, 4, groups=channels, bias=False)
        self.conv.weight.data = _fir(channels, 4.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(self.zeros(x), (2, 1, 2, 1)))


class SepConv(nn.Module):
    def __init__(self, cin: int, cout: int, *, down: bool = False, up: bool = False, noise: int = 0) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, 3, padding=1, groups=cin)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)
        self.down = Down(cin) if down else None
        self.up = Up(cout) if up else None
        self.noise = nn.Parameter(torch.randn(noise, noise) * 0.1) if noise else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _act(self.depthwise(x))
        if self.down is not None:
            x = self.down(x)
        x = self.pointwise(x)
        if self.up is not None:
            x = self.up(x)
        if self.noise is not None:
            x = x + self.noise
        return _act(x)


def _channels(resolution: int) -> int:
    return min(32768 // resolution, 512)


class Generator(nn.Module):
    def __init__(self, resolution: int = 512) -> None:
        super().__init__()
        levels = [2**i for i in range(int(math.log2(resolution)), 1, -1)]  # 512, 256, ..., 4
        self.levels = levels
        self.from_rgb = nn.Conv2d(4, _channels(resolution), 1)
        self.encode = nn.ModuleList()
        for res, nxt in itertools.pairwise(levels):
            self.encode.append(
                nn.ModuleList(
                    [SepConv(_channels(res), _channels(res)), SepConv(_channels(res), _channels(nxt), down=True)]
                )
            )
        self.encode_last = nn.ModuleList([SepConv(512, 512), SepConv(512, 512)])
        self.first = nn.ModuleList([SepConv(512, 512), SepConv(512, 512)])
        self.to_rgb = nn.ModuleList([nn.Conv2d(512, 3, 1)])
        self.decode = nn.ModuleList()
        self.rgb_up = nn.ModuleList()
        for res, nxt in zip(levels[::-1][:-1], levels[::-1][1:]):  # 4 -> 8, ..., 256 -> 512
            cin, cout = _channels(res), _channels(nxt)
            self.decode.append(nn.ModuleList([SepConv(cin, cout, up=True, noise=nxt), SepConv(cout, cout, noise=nxt)]))
            self.to_rgb.append(nn.Conv2d(cout, 3, 1))
            self.rgb_up.append(Up(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = []
        x = _act(self.from_rgb(x))
        for first, second in self.encode:
            feat = first(x)
            feats.append(feat)
            x = second(feat)
        feat = self.encode_last[0](x)
        x = self.encode_last[1](feat)
        x = self.first[1](self.first[0](x) + feat)
        img = self.to_rgb[0](x)
        for (first, second), to_rgb, up, feat in zip(self.decode, self.to_rgb[1:], self.rgb_up, reversed(feats)):
            x = second(first(x) + feat)
            img = up(img) + to_rgb(x)
        return img


class MiGanPipeline(nn.Module):
    def __init__(self, resolution: int = 512) -> None:
        super().__init__()
        self.res = resolution
        self.generator = Generator(resolution)

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        small = F.interpolate(image.float(), size=(self.res, self.res), mode="bilinear", align_corners=False)
        known = F.interpolate(mask.float(), size=(self.res, self.res), mode="nearest") / 255
        small = small * 2 / 255 - 1
        out = self.generator(torch.cat([known - 0.5, small * known], dim=1))
        out = ((out * 0.5 + 0.5) * 255).clamp(0, 255)
        out = F.interpolate(out, size=(image.shape[2], image.shape[3]), mode="bilinear", align_corners=False)
        blend = mask.float() / 255
        return (image.float() * blend + out * (1 - blend)).clamp(0, 255).to(torch.uint8)
