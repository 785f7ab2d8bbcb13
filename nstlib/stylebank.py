"""StyleBank: Chen, Yuan, Liao, Yu & Hua, "StyleBank: An Explicit Representation for Neural Image
Style Transfer" (CVPR 2017).

One auto-encoder shared by every style, and one small convolutional *filter bank* per style that
acts on the encoder's feature map:

    O   = D(E(I))                 the auto-encoder branch: reconstruct the photo         (Sec. 3.1)
    O_i = D(K_i (x) E(I))         the stylising branch for style i, (x) = convolution

Because (x) is linear in the filters, styles fuse at the level of banks (Sec. 4.3):

    linear fusion   K~ = sum_i w_i K_i                       one image-level blend of styles
    region fusion   F~ = sum_i K_i (x) (M_i o E(I))          style i where mask M_i is 1

Architecture (Sec. 3.1, as in the paper's Table/Fig. 2): the encoder is one stride-1 9x9
convolution and two stride-2 3x3 convolutions (32, 64, 128 channels), each followed by instance
normalisation and ReLU; the decoder mirrors it with x2 upsampling + 3x3 convolutions and ends
with a 9x9 convolution to RGB without normalisation. Each bank is one 3x3 convolution from 128 to
128 channels (147k parameters, 0.6 MB in float32: the paper's point is that a style is cheap).
Reflection padding throughout.

The stylising branch's loss (Sec. 3.2; `stylising_losses`), a perceptual loss on VGG-16 (the
course's weights):

    L_K = alpha L_content(O_i, I) + beta L_style(O_i, S_i) + gamma L_tv(O_i)

with content at relu4_2 and Gram style losses at relu1_2, relu2_2, relu3_2 and relu4_2 (our reading
of the paper). Each output's Gram matrix is its own, (B, N, N), compared with the style's: computing
one Gram over the whole batch, as some public code does, would average the batch's statistics
together. The auto-encoder branch's loss is L_I = ||O - I||^2 (mean). The losses use averages, not
the sums of notebook 03, so the weights do not depend on the crop size: L_content is the mean
squared feature difference, L_style the course's E_l (Gatys Eq. 4, size-independent already)
averaged over layers and over the batch, L_tv the mean squared difference of neighbouring pixels.

Training alternates T steps of the stylising branch with one step of the auto-encoder branch
(Sec. 3.2, "(T+1)-step alternation"); see nstlib.stylebank_training.
"""
from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .images import as_mask, load_image
from .losses import gram, style_layer_loss

if TYPE_CHECKING:
    from .features import VGGFeatures

WIDTHS = (32, 64, 128)
CONTENT_LAYER = "relu4_2"
STYLE_LAYERS = ("relu1_2", "relu2_2", "relu3_2", "relu4_2")
# alpha, beta, gamma of L_K. For the course's VGG-16 (Caffe weights, features in 0..255 units) with
# the averaged losses: an untrained output starts near L_content 1e5 and L_style 1e10, a trained one
# near 7e4 and 4e8..2e9, so beta = 1e-3 makes style dominate at first and the two comparable later;
# TV (about 1e-3 on a trained output) adds a few percent, enough against checkerboards.
CONTENT_WEIGHT = 1.0
STYLE_WEIGHT = 1e-3
TV_WEIGHT = 3e5


def _conv(c_in: int, c_out: int, kernel: int, stride: int = 1, bias: bool = True) -> list[nn.Module]:
    return [nn.ReflectionPad2d(kernel // 2), nn.Conv2d(c_in, c_out, kernel, stride, bias=bias)]


def _norm_relu(channels: int) -> list[nn.Module]:
    return [nn.InstanceNorm2d(channels, affine=True), nn.ReLU()]


def build_encoder() -> nn.Sequential:
    """E: 9x9/1 (3->32), 3x3/2 (32->64), 3x3/2 (64->128), each + instance norm + ReLU: (B,3,H,W) -> (B,128,H/4,W/4)."""
    a, b, c = WIDTHS
    return nn.Sequential(*_conv(3, a, 9), *_norm_relu(a), *_conv(a, b, 3, 2), *_norm_relu(b),
                         *_conv(b, c, 3, 2), *_norm_relu(c))


def build_decoder() -> nn.Sequential:
    """D: (x2 up + 3x3 conv + IN + ReLU) twice, then a 9x9 conv to RGB without normalisation."""
    a, b, c = WIDTHS
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), *_conv(c, b, 3), *_norm_relu(b),
                         nn.Upsample(scale_factor=2, mode="nearest"), *_conv(b, a, 3), *_norm_relu(a),
                         *_conv(a, 3, 9))


def build_bank() -> nn.Sequential:
    """K_i: one 3x3 convolution on the 128-channel feature map, filters only (no bias), so that
    K_i (x) F is linear in F and both fusions below are exact: a bias would add every bank's
    offset even where its region mask is 0."""
    return nn.Sequential(*_conv(WIDTHS[-1], WIDTHS[-1], 3, bias=False))


class StyleBank(nn.Module):
    """The shared encoder/decoder and `n_styles` banks. `model(content, style_id)` stylises;
    `model(content, None)` reconstructs. Images are (B, 3, H, W) in [0, 1], any size (padded to
    multiples of 4 inside, the output cropped back); outputs are not clamped (clamp them to show them)."""

    def __init__(self, n_styles: int, style_names: Sequence[str] | None = None):
        super().__init__()
        if n_styles < 1:
            raise ValueError(f"n_styles must be >= 1, got {n_styles}")
        if style_names is not None and len(style_names) != n_styles:
            raise ValueError(f"{len(style_names)} style names for {n_styles} styles")
        self.encoder = build_encoder()
        self.decoder = build_decoder()
        self.banks = nn.ModuleList(build_bank() for _ in range(n_styles))
        # what each bank learned (registry names or file names), for labels and the widget
        self.style_names = list(style_names) if style_names is not None else [f"style {i}" for i in range(n_styles)]

    @property
    def n_styles(self) -> int:
        return len(self.banks)

    def add_style(self, name: str | None = None) -> int:
        """Append a fresh bank (incremental learning, Sec. 4.2); returns its style id."""
        self.banks.append(build_bank().to(next(self.parameters()).device))
        self.style_names.append(name or f"style {self.n_styles - 1}")
        return self.n_styles - 1

    def style_id(self, name: str) -> int:
        """The bank that learned style `name`."""
        if name not in self.style_names:
            raise ValueError(f"this StyleBank has no style {name!r}; it has {', '.join(self.style_names)}")
        return self.style_names.index(name)

    def check_style_id(self, style_id: int) -> None:
        """Raise ValueError unless this model has a bank `style_id`."""
        if not 0 <= style_id < self.n_styles:
            raise ValueError(f"style_id {style_id} out of range: this model has {self.n_styles} styles")

    def forward(self, content: torch.Tensor, style_id: int | None) -> torch.Tensor:
        if style_id is not None:
            self.check_style_id(style_id)
        x, (h, w) = _pad_to_multiple_of_4(content)  # (B, 3, H', W'), H' and W' multiples of 4
        features = self.encoder(x)  # E(I): (B, 128, H'/4, W'/4)
        if style_id is not None:
            features = self.banks[style_id](features)  # K_i (x) E(I): (B, 128, H'/4, W'/4)
        return self.decoder(features)[..., :h, :w]  # (B, 3, H', W'), cropped back to (B, 3, H, W)

    def fuse_linear(self, content: torch.Tensor, blend: Sequence[float]) -> torch.Tensor:
        """Linear fusion: decode (sum_i w_i K_i) (x) E(I), with the banks' filters blended by
        `blend`, one weight w_i per style (normalised to sum 1)."""
        blend = [float(w) for w in blend]
        if len(blend) != self.n_styles or any(not math.isfinite(w) or w < 0 for w in blend) or sum(blend) <= 0:
            raise ValueError(f"need {self.n_styles} blend weights >= 0, not all 0; got {blend}")
        x, (h, w) = _pad_to_multiple_of_4(content)
        total = sum(blend)
        conv = [bank[1] for bank in self.banks]  # each bank: (pad, conv)
        weight = sum((w / total) * c.weight for w, c in zip(blend, conv))  # (128, 128, 3, 3)
        features = F.pad(self.encoder(x), (1, 1, 1, 1), mode="reflect")
        return self.decoder(F.conv2d(features, weight))[..., :h, :w]

    def fuse_regions(self, content: torch.Tensor, masks: Sequence[torch.Tensor]) -> torch.Tensor:
        """Region fusion: decode sum_i K_i (x) (M_i o E(I)), one mask per style ((H, W), (1, H, W),
        (1, 1, H, W) or (B, 1, H, W), in [0, 1], at the image's size: checked by `images.as_mask`;
        an all-zero mask leaves that bank out), downsampled to the feature map by area."""
        if len(masks) != self.n_styles:
            raise ValueError(f"need one mask per style ({self.n_styles}), got {len(masks)}")
        x, (h, w) = _pad_to_multiple_of_4(content)
        masks = [as_mask(m, like=content, name=f"mask {i + 1}", batch=True, allow_empty=True)
                 for i, m in enumerate(masks)]
        features = self.encoder(x)
        fused = 0
        for bank, m in zip(self.banks, masks):
            m = m.to(features)
            m = F.pad(m, (0, x.shape[-1] - w, 0, x.shape[-2] - h), mode="replicate")  # padded like the image
            fused = fused + bank(features * F.interpolate(m, size=features.shape[-2:], mode="area"))
        return self.decoder(fused)[..., :h, :w]


def _pad_to_multiple_of_4(x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
    """Reflection-pad (B, 3, H, W) images at the bottom and right to multiples of 4 (the two
    stride-2 convolutions); returns the padded images and (H, W), to crop the output back."""
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"expected images (B, 3, H, W), got {tuple(x.shape)}")
    h, w = x.shape[-2:]
    pad_h, pad_w = -h % 4, -w % 4
    if pad_h or pad_w:
        x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate" if min(h, w) < 4 else "reflect")
    return x, (h, w)


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ----------------------------------------------------------------------------- losses

def style_targets(vgg: VGGFeatures, styles: Sequence, max_size: int) -> list[dict[str, torch.Tensor]]:
    """Per style image (a tensor, file or registry name; loaded with its longer side `max_size`),
    its (1, N, N) Gram matrices at STYLE_LAYERS: the targets S_i of L_style."""
    out = []
    with torch.no_grad():
        for s in styles:
            x = s if torch.is_tensor(s) else load_image(s, max_size=max_size)
            feats = vgg.extract(x.to(vgg.mean.device), STYLE_LAYERS)
            out.append({l: gram(f) for l, f in feats.items()})
    return out


def stylising_losses(vgg: VGGFeatures, output: torch.Tensor, content: torch.Tensor,
                     targets: dict[str, torch.Tensor], content_weight: float = CONTENT_WEIGHT,
                     style_weight: float = STYLE_WEIGHT, tv_weight: float = TV_WEIGHT) -> dict[str, torch.Tensor]:
    """The stylising branch's loss (Sec. 3.2) for a batch of outputs O_i (B, 3, H, W) of one style,
    their photos I (B, 3, H, W) and that style's `targets` (from `style_targets`):

        L_K = alpha L_content + beta L_style + gamma L_tv
        L_content = mean (phi(O_i) - phi(I))^2                        phi = VGG at CONTENT_LAYER
        L_style   = 1/(L B) sum_b sum_l ||G_l(O_i^b) - G_l(S_i)||_F^2 / (4 N_l^2)   L = len(STYLE_LAYERS)
        L_tv      = mean (O(x+1, y) - O(x, y))^2 + mean (O(x, y+1) - O(x, y))^2

    alpha, beta, gamma = content_weight, style_weight, tv_weight. Returns {'content', 'style',
    'tv', 'total'}. Under bf16 autocast VGG runs in bfloat16; the losses are computed in float32."""
    b = output.shape[0]
    feats = vgg.extract(output, tuple(dict.fromkeys((*STYLE_LAYERS, CONTENT_LAYER))))  # relu4_2 serves both
    with torch.no_grad():
        content_target = vgg.extract(content, CONTENT_LAYER)[CONTENT_LAYER]
    autocast = torch.is_autocast_enabled(output.device.type)
    with torch.autocast(output.device.type, enabled=False) if autocast else contextlib.nullcontext():
        if autocast:  # bfloat16 features: compare them in float32
            feats = {k: v.float() for k, v in feats.items()}
            output, content_target = output.float(), content_target.float()
        l_content = F.mse_loss(feats[CONTENT_LAYER], content_target)
        # gram(...) is (B, N, N): one Gram matrix per output, each compared with the style's (1, N, N)
        l_style = sum(style_layer_loss(gram(feats[l]), targets[l]) for l in STYLE_LAYERS) / (len(STYLE_LAYERS) * b)
        dx = output[..., :, 1:] - output[..., :, :-1]
        dy = output[..., 1:, :] - output[..., :-1, :]
        l_tv = dx.pow(2).mean() + dy.pow(2).mean()
        total = content_weight * l_content + style_weight * l_style + tv_weight * l_tv
    return {"content": l_content, "style": l_style, "tv": l_tv, "total": total}


def export_stylebank(model: StyleBank, path: str | Path, training: dict | None = None) -> str:
    """Save every weight in float16 (half the bytes), the style names and an optional record of
    how it was trained (`models.training_record` reads it back); atomic; returns the sha256."""
    from .training import save_checkpoint
    from .download import file_hash

    state = {k: v.detach().to("cpu", torch.float16) for k, v in model.state_dict().items()}
    path = save_checkpoint(path, {"kind": "stylebank", "widths": list(WIDTHS), "style_names": model.style_names,
                                  "model": state, "training": training or {}})
    return file_hash(path)


def load_stylebank(path: str | Path) -> StyleBank:
    """A StyleBank saved by `export_stylebank`, in float32, eval mode, on the CPU."""
    from .training import load_checkpoint

    saved = load_checkpoint(path)
    if saved.get("kind") != "stylebank" or saved.get("widths") != list(WIDTHS):
        raise ValueError(f"{path} is not a StyleBank exported by this version of nstlib "
                         f"(kind {saved.get('kind')!r}, widths {saved.get('widths')})")
    model = StyleBank(len(saved["style_names"]), saved["style_names"])
    model.load_state_dict({k: v.float() for k, v in saved["model"].items()})
    return model.eval()


SHIPPED = "stylebank_4styles"  # name in data/models.tsv


def pretrained() -> StyleBank:
    """The StyleBank the project trained and ships (data/models/, hash-checked): one bank per
    style in `.style_names`, eval mode, on the CPU; move it with `.to(device)`."""
    from .models import shipped_model

    return load_stylebank(shipped_model(SHIPPED))
