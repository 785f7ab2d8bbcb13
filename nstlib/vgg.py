"""The VGG-16 and VGG-19 convolutional stacks (Simonyan & Zisserman, ICLR 2015), named as in the papers.

Style-transfer papers name VGG layers by block and position: `conv3_1` is the first convolution of
block 3, `relu3_1` its rectified output, `pool3` the pooling that ends the block (Gatys et al. 2016,
Sec. 2). This module defines those names and builds the stack as an `nn.Sequential` whose indices
are torchvision's `vgg16().features` / `vgg19().features`, so the same state_dict keys
(`features.{i}.weight`) load either way. torchvision itself is not needed.

    VGG-16: 2, 2, 3, 3, 3 convolutions per block; VGG-19: 2, 2, 4, 4, 4.
    Widths 64, 128, 256, 512, 512. Every conv is 3x3, stride 1, padding 1, followed by a ReLU;
    every block ends with a 2x2, stride-2 pooling.

Two options the style-transfer literature varies:
* pooling 'max' (the classification network) or 'avg' (Gatys et al. found it gives slightly
  smoother, more appealing results; the weights are the same);
* padding 'zero' (as trained), 'reflect' (fewer border artefacts in generated images) or 'circular'
  (the image wraps around like a torus: no border at all, so a feature cannot tell where it is and,
  for sizes divisible by 16, shifting the image cyclically by a multiple of 16 px shifts every
  feature map up to conv5_x the same way; notebook 02 uses it to show where texture layout comes from).
"""
from __future__ import annotations

import torch
import torch.nn as nn

BLOCKS = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
WIDTHS = (64, 128, 256, 512, 512)
POOLINGS = ("max", "avg")
PADDINGS = ("zero", "reflect", "circular")


class ReLU(nn.ReLU):
    """nn.ReLU (not in-place) whose caller may allow it to overwrite its input: `relu(x, inplace=True)`.

    `VGGFeatures.extract` does so where nobody asked for the convolution's output: that saves
    writing a copy of each of the largest tensors (3-8% of a Gatys evaluation on a 2-core CPU),
    while forward hooks on the module still see every call."""

    def forward(self, x, inplace: bool = False):
        return torch.relu_(x) if inplace else super().forward(x)


def check_arch(arch: str) -> None:
    if arch not in BLOCKS:
        raise ValueError(f"arch must be one of {tuple(BLOCKS)}, got {arch!r}")


def layer_names(arch: str = "vgg16") -> list[str]:
    """Every layer in order: conv1_1, relu1_1, conv1_2, relu1_2, pool1, conv2_1, ..., pool5."""
    check_arch(arch)
    names = []
    for block, n_convs in enumerate(BLOCKS[arch], start=1):
        for i in range(1, n_convs + 1):
            names += [f"conv{block}_{i}", f"relu{block}_{i}"]
        names.append(f"pool{block}")
    return names


def conv_shapes(arch: str = "vgg16") -> dict[int, tuple[int, int]]:
    """Sequential index of each conv -> (in_channels, out_channels)."""
    shapes, in_ch = {}, 3
    for index, name in enumerate(layer_names(arch)):
        if name.startswith("conv"):
            out_ch = WIDTHS[int(name[4]) - 1]
            shapes[index] = (in_ch, out_ch)
            in_ch = out_ch
    return shapes


def build(arch: str = "vgg16", pooling: str = "max", padding: str = "zero") -> nn.Sequential:
    """The convolutional stack with torchvision's indices (weights left at PyTorch's init)."""
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
    shapes = conv_shapes(arch)
    layers = []
    for index, name in enumerate(layer_names(arch)):
        if name.startswith("conv"):
            in_ch, out_ch = shapes[index]
            mode = {"zero": "zeros"}.get(padding, padding)  # nn.Conv2d's names: zeros, reflect, circular
            layers.append(nn.Conv2d(in_ch, out_ch, 3, padding=1, padding_mode=mode))
        elif name.startswith("relu"):
            # not in-place: a requested conv output must stay the pre-activation
            layers.append(ReLU())
        else:
            layers.append(nn.MaxPool2d(2, 2) if pooling == "max" else nn.AvgPool2d(2, 2))
    return nn.Sequential(*layers)
