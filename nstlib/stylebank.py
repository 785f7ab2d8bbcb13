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

**One change to the paper, for colour** (`style_norms=True`, the default; notebook 06 measures why).
Each instance norm of the decoder resets every channel's mean and spread to the decoder's own learned
scale and shift, shared by every style, so whatever per-channel gain or offset a bank produces is
erased before it reaches the output, and all styles come out with one shared colour cast. With
`style_norms` every style also owns the scale and shift of the decoder's two instance norms (192
numbers), as in conditional instance normalisation (Dumoulin et al. 2017, Eq. 5):

    D_i(F) = D(F) with IN(x) -> gamma_i (x - mu(x)) / sigma(x) + beta_i at each decoder norm

A style is then K_i plus (gamma_i, beta_i); the auto-encoder branch keeps the decoder's own. Both
fusions blend them with the filters: linear fusion takes sum_i w_i gamma_i, region fusion the map
sum_i M_i gamma_i at each norm's resolution (Dumoulin's style mixing, per region; masks that sum to
1 give convex blends).
`style_norms=False` builds the paper's network exactly (the first model shipped).

**A second change, for the auto-encoder** (`instance_norm=False`; the shipped model). The encoder's
instance norms remove each channel's mean and spread per image, so E(aI + b) = E(I): the encoder
cannot see a photo's exposure or colour cast, and the auto-encoder branch can only guess them (notebook
06 measures the cost, about 4 dB). Without instance norm nothing removes them: the encoder is
convolutions and ReLUs, and where each decoder norm was, a ChannelAffine scales and shifts the features
as they are, the decoder's own for the auto-encoder branch and each style's for its branch:

    D_i(F) = D(F) with x -> gamma_i x + beta_i at each of those places       (FiLM, Perez et al. 2018)

Nothing rescales the activations either, so this network starts from He initialisation and trains at
a lower learning rate. Measured (issue 20, the shipped recipe otherwise): with PyTorch's default
initialisation at lr 1e-3, 30 of conv1's 32 channels were dead ReLUs by step 1,000 and every output
near-constant; at 2e-4 the auto-encoder was still at 9-12 dB at step 250; with He initialisation at
2e-4, 20-23 dB at step 250 and 24.4 dB on held-out photos after 5,000 steps (data/models.tsv).

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


class ChannelAffine(nn.Module):
    """x -> scale * x + shift per channel, without normalising (the `instance_norm=False` network's
    stand-in for an instance norm: where a norm would be, a style's own scale and shift act on the
    features as they are). Starts at the identity, as nn.InstanceNorm2d's affine does."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)

    def extra_repr(self) -> str:
        return str(self.num_features)


NORMS = (nn.InstanceNorm2d, ChannelAffine)  # the decoder's scale-and-shift slots, in either network


def _norm_relu(channels: int, instance_norm: bool = True, decoder: bool = False) -> list[nn.Module]:
    if instance_norm:
        return [nn.InstanceNorm2d(channels, affine=True), nn.ReLU()]
    return [ChannelAffine(channels), nn.ReLU()] if decoder else [nn.ReLU()]


def build_encoder(instance_norm: bool = True) -> nn.Sequential:
    """E: 9x9/1 (3->32), 3x3/2 (32->64), 3x3/2 (64->128), each + instance norm (the paper; none with
    instance_norm=False) + ReLU: (B,3,H,W) -> (B,128,H/4,W/4)."""
    a, b, c = WIDTHS
    n = instance_norm
    return nn.Sequential(*_conv(3, a, 9), *_norm_relu(a, n), *_conv(a, b, 3, 2), *_norm_relu(b, n),
                         *_conv(b, c, 3, 2), *_norm_relu(c, n))


def build_decoder(instance_norm: bool = True) -> nn.Sequential:
    """D: (x2 up + 3x3 conv + IN + ReLU) twice, then a 9x9 conv to RGB without normalisation.
    instance_norm=False: a ChannelAffine (scale and shift, no normalisation) where each IN was."""
    a, b, c = WIDTHS
    n = instance_norm
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), *_conv(c, b, 3), *_norm_relu(b, n, True),
                         nn.Upsample(scale_factor=2, mode="nearest"), *_conv(b, a, 3), *_norm_relu(a, n, True),
                         *_conv(a, 3, 9))


def _he_init(module: nn.Module) -> None:
    """He et al.'s initialisation (2015) of every convolution, biases 0: without instance norm nothing
    rescales the activations, and PyTorch's default (uniform, +-1/sqrt(fan_in)) shrinks them by about
    sqrt(3) per layer, to a near-constant output after the network's seven layers."""
    for conv in (m for m in module.modules() if isinstance(m, nn.Conv2d)):
        to_rgb = conv.out_channels == 3  # the decoder's last layer: no ReLU after it
        nn.init.kaiming_normal_(conv.weight, nonlinearity="linear" if to_rgb else "relu")
        if conv.bias is not None:
            nn.init.zeros_(conv.bias)


def decoder_norm_widths() -> list[int]:
    """The channel counts of the decoder's instance norms (or ChannelAffines), in order: (64, 32)."""
    return [m.num_features for m in build_decoder() if isinstance(m, NORMS)]


class StyleNorms(nn.Module):
    """One style's scale and shift for every decoder instance norm (gamma_i, beta_i), concatenated:
    `scale`, `shift` (96,). They start at 1 and 0, the identity affine, as nn.InstanceNorm2d's do."""

    def __init__(self):
        super().__init__()
        n = sum(decoder_norm_widths())
        self.scale = nn.Parameter(torch.ones(n))
        self.shift = nn.Parameter(torch.zeros(n))


def build_bank() -> nn.Sequential:
    """K_i: one 3x3 convolution on the 128-channel feature map, filters only (no bias), so that
    K_i (x) F is linear in F and both fusions below are exact: a bias would add every bank's
    offset even where its region mask is 0."""
    return nn.Sequential(*_conv(WIDTHS[-1], WIDTHS[-1], 3, bias=False))


class StyleBank(nn.Module):
    """The shared encoder/decoder and `n_styles` banks. `model(content, style_id)` stylises;
    `model(content, None)` reconstructs. Images are (B, 3, H, W) in [0, 1], any size (padded to
    multiples of 4 inside, the output cropped back); outputs are not clamped (clamp them to show them)."""

    def __init__(self, n_styles: int, style_names: Sequence[str] | None = None, style_norms: bool = True,
                 instance_norm: bool = True):
        super().__init__()
        if n_styles < 1:
            raise ValueError(f"n_styles must be >= 1, got {n_styles}")
        if style_names is not None and len(style_names) != n_styles:
            raise ValueError(f"{len(style_names)} style names for {n_styles} styles")
        self.instance_norm = instance_norm
        self.encoder = build_encoder(instance_norm)
        self.decoder = build_decoder(instance_norm)
        self.banks = nn.ModuleList(build_bank() for _ in range(n_styles))
        if not instance_norm:
            for part in (self.encoder, self.decoder, *self.banks):
                _he_init(part)
        # per style: the decoder norms' scale and shift (see the module docstring); None: the paper's network
        self.style_norms = nn.ModuleList(StyleNorms() for _ in range(n_styles)) if style_norms else None
        # what each bank learned (registry names or file names), for labels and the widget
        self.style_names = list(style_names) if style_names is not None else [f"style {i}" for i in range(n_styles)]

    @property
    def n_styles(self) -> int:
        return len(self.banks)

    def add_style(self, name: str | None = None) -> int:
        """Append a fresh bank (incremental learning, Sec. 4.2); returns its style id."""
        device = next(self.parameters()).device
        self.banks.append(build_bank().to(device))
        if not self.instance_norm:
            _he_init(self.banks[-1])
        if self.style_norms is not None:
            self.style_norms.append(StyleNorms().to(device))
        self.style_names.append(name or f"style {self.n_styles - 1}")
        return self.n_styles - 1

    def style_id(self, name: str) -> int:
        """The bank that learned style `name`."""
        if name not in self.style_names:
            raise ValueError(f"this StyleBank has no style {name!r}; it has {', '.join(self.style_names)}")
        return self.style_names.index(name)

    def style_parameters(self, style_id: int) -> list[nn.Parameter]:
        """What style `style_id` owns: its bank's filters and, with style_norms, its decoder scales and shifts."""
        own = list(self.banks[style_id].parameters())
        return own + list(self.style_norms[style_id].parameters()) if self.style_norms is not None else own

    def check_style_id(self, style_id: int) -> None:
        """Raise ValueError unless this model has a bank `style_id`."""
        if not 0 <= style_id < self.n_styles:
            raise ValueError(f"style_id {style_id} out of range: this model has {self.n_styles} styles")

    def forward(self, content: torch.Tensor, style_id: int | None) -> torch.Tensor:
        if style_id is not None:
            self.check_style_id(style_id)
        x, (h, w) = _pad_to_multiple_of_4(content)  # (B, 3, H', W'), H' and W' multiples of 4
        features = self.encoder(x)  # E(I): (B, 128, H'/4, W'/4)
        if style_id is None:
            return self.decoder(features)[..., :h, :w]  # O = D(E(I)), cropped back to (B, 3, H, W)
        features = self.banks[style_id](features)  # K_i (x) E(I): (B, 128, H'/4, W'/4)
        weights = [1.0 if i == style_id else 0.0 for i in range(self.n_styles)]
        return self.decode(features, weights)[..., :h, :w]  # (B, 3, H', W'), cropped back to (B, 3, H, W)

    def decode(self, features: torch.Tensor, style_weights: Sequence[float] | torch.Tensor | None = None) -> torch.Tensor:
        """D(features). With style_norms and `style_weights`, each decoder norm's scale and shift are
        sum_i w_i (gamma_i, beta_i): one weight per style (a sequence), or per-pixel weight maps
        (B, n_styles, H', W') at the padded image's size (region fusion), averaged down to each
        norm's resolution. Without style_weights, or without style_norms: the decoder's own."""
        if style_weights is None or self.style_norms is None:
            return self.decoder(features)
        scales = torch.stack([n.scale for n in self.style_norms])  # (n_styles, 96)
        shifts = torch.stack([n.shift for n in self.style_norms])
        if not torch.is_tensor(style_weights):
            style_weights = torch.tensor(list(style_weights), dtype=scales.dtype, device=scales.device)
        x, start = features, 0
        for layer in self.decoder:
            if not isinstance(layer, NORMS):
                x = layer(x)
                continue
            part = slice(start, start + layer.num_features)
            start += layer.num_features
            if style_weights.dim() == 1:  # one blend for the whole image: (C,) -> (1, C, 1, 1)
                g = (style_weights @ scales[:, part]).view(1, -1, 1, 1)
                b = (style_weights @ shifts[:, part]).view(1, -1, 1, 1)
            else:  # per pixel: (B, n, h, w) weights at this norm's resolution -> (B, C, h, w)
                w = F.interpolate(style_weights, size=x.shape[-2:], mode="area")
                g = torch.einsum("bnhw,nc->bchw", w, scales[:, part])
                b = torch.einsum("bnhw,nc->bchw", w, shifts[:, part])
            x = (F.instance_norm(x, eps=layer.eps) if self.instance_norm else x) * g + b
        return x

    def fuse_linear(self, content: torch.Tensor, blend: Sequence[float]) -> torch.Tensor:
        """Linear fusion: decode (sum_i w_i K_i) (x) E(I), with the banks' filters (and, with
        style_norms, their decoder scales and shifts) blended by `blend`, one weight w_i per style
        (normalised to sum 1)."""
        blend = [float(w) for w in blend]
        if len(blend) != self.n_styles or any(not math.isfinite(w) or w < 0 for w in blend) or sum(blend) <= 0:
            raise ValueError(f"need {self.n_styles} blend weights >= 0, not all 0; got {blend}")
        x, (h, w) = _pad_to_multiple_of_4(content)
        total = sum(blend)
        conv = [bank[1] for bank in self.banks]  # each bank: (pad, conv)
        weight = sum((w / total) * c.weight for w, c in zip(blend, conv))  # (128, 128, 3, 3)
        features = F.pad(self.encoder(x), (1, 1, 1, 1), mode="reflect")
        return self.decode(F.conv2d(features, weight), [w / total for w in blend])[..., :h, :w]

    def fuse_regions(self, content: torch.Tensor, masks: Sequence[torch.Tensor], feather: float = 0.0) -> torch.Tensor:
        """Region fusion: decode sum_i K_i (x) (M_i o E(I)), one mask per style ((H, W), (1, H, W),
        (1, 1, H, W) or (B, 1, H, W), in [0, 1], at the image's size: checked by `images.as_mask`;
        an all-zero mask leaves that bank out), downsampled to the feature map by area. With
        style_norms the masks also weight each style's decoder scales and shifts, pixel by pixel;
        masks that sum to 1 everywhere (a partition, or a feathered one) give convex blends.
        `feather` > 0 blurs every mask with a Gaussian of that standard deviation in pixels first
        (`feather_masks`), so that the styles cross-fade over a few feature cells instead of meeting
        at a hard seam."""
        if len(masks) != self.n_styles:
            raise ValueError(f"need one mask per style ({self.n_styles}), got {len(masks)}")
        x, (h, w) = _pad_to_multiple_of_4(content)
        masks = [as_mask(m, like=content, name=f"mask {i + 1}", batch=True, allow_empty=True)
                 for i, m in enumerate(masks)]
        if not (math.isfinite(feather) and feather >= 0):
            raise ValueError(f"feather must be a standard deviation in pixels >= 0, got {feather}")
        features = self.encoder(x)
        # padded like the image: (B, n_styles, H', W')
        maps = torch.cat([F.pad(m.to(features), (0, x.shape[-1] - w, 0, x.shape[-2] - h), mode="replicate")
                          .expand(x.shape[0], -1, -1, -1) for m in masks], dim=1)
        maps = feather_masks(maps, feather)
        small = F.interpolate(maps, size=features.shape[-2:], mode="area")
        fused = sum(bank(features * small[:, i:i + 1]) for i, bank in enumerate(self.banks))
        return self.decode(fused, maps)[..., :h, :w]


def feather_masks(masks: torch.Tensor, sigma: float) -> torch.Tensor:
    """Masks (B, n, H, W) blurred by a Gaussian of standard deviation `sigma` px (separable, kernel
    radius 3 sigma, edges replicated). Blurring is linear, so masks that sum to 1 still do; sigma 0
    returns them unchanged."""
    if sigma <= 0:
        return masks
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=masks.dtype, device=masks.device)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    kernel = kernel / kernel.sum()
    b, n, h, w = masks.shape
    x = masks.reshape(b * n, 1, h, w)
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="replicate"), kernel.view(1, 1, 1, -1))
    x = F.conv2d(F.pad(x, (0, 0, radius, radius), mode="replicate"), kernel.view(1, 1, -1, 1))
    return x.reshape(b, n, h, w)


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


def check_content_layer(layer: str) -> str:
    """`layer` if L_content may use it: one of STYLE_LAYERS (VGG-16 up to CONTENT_LAYER)."""
    if layer not in STYLE_LAYERS:
        raise ValueError(f"content_layer must be one of {STYLE_LAYERS} (VGG-16 up to {CONTENT_LAYER}), got {layer!r}")
    return layer


def stylising_losses(vgg: VGGFeatures, output: torch.Tensor, content: torch.Tensor,
                     targets: dict[str, torch.Tensor], content_weight: float = CONTENT_WEIGHT,
                     style_weight: float = STYLE_WEIGHT, tv_weight: float = TV_WEIGHT,
                     content_layer: str = CONTENT_LAYER) -> dict[str, torch.Tensor]:
    """The stylising branch's loss (Sec. 3.2) for a batch of outputs O_i (B, 3, H, W) of one style,
    their photos I (B, 3, H, W) and that style's `targets` (from `style_targets`):

        L_K = alpha L_content + beta L_style + gamma L_tv
        L_content = mean (phi(O_i) - phi(I))^2        phi = VGG at content_layer (the paper: CONTENT_LAYER)
        L_style   = 1/(L B) sum_b sum_l ||G_l(O_i^b) - G_l(S_i)||_F^2 / (4 N_l^2)   L = len(STYLE_LAYERS)
        L_tv      = mean (O(x+1, y) - O(x, y))^2 + mean (O(x, y+1) - O(x, y))^2

    alpha, beta, gamma = content_weight, style_weight, tv_weight. Returns {'content', 'style',
    'tv', 'total'}. Under bf16 autocast VGG runs in bfloat16; the losses are computed in float32."""
    b = output.shape[0]
    check_content_layer(content_layer)
    feats = vgg.extract(output, STYLE_LAYERS)  # the content layer is one of them
    with torch.no_grad():
        content_target = vgg.extract(content, content_layer)[content_layer]
    autocast = torch.is_autocast_enabled(output.device.type)
    with torch.autocast(output.device.type, enabled=False) if autocast else contextlib.nullcontext():
        if autocast:  # bfloat16 features: compare them in float32
            feats = {k: v.float() for k, v in feats.items()}
            output, content_target = output.float(), content_target.float()
        l_content = F.mse_loss(feats[content_layer], content_target)
        # gram(...) is (B, N, N): one Gram matrix per output, each compared with the style's (1, N, N)
        l_style = sum(style_layer_loss(gram(feats[l]), targets[l]) for l in STYLE_LAYERS) / (len(STYLE_LAYERS) * b)
        dx = output[..., :, 1:] - output[..., :, :-1]
        dy = output[..., 1:, :] - output[..., :-1, :]
        l_tv = dx.pow(2).mean() + dy.pow(2).mean()
        total = content_weight * l_content + style_weight * l_style + tv_weight * l_tv
    return {"content": l_content, "style": l_style, "tv": l_tv, "total": total}


def held_out_scores(model: StyleBank, vgg: VGGFeatures, photos: Sequence[torch.Tensor],
                    targets: Sequence[dict[str, torch.Tensor]], paintings: Sequence[torch.Tensor]) -> dict:
    """How a trained StyleBank does on photos it never saw (issue 20's measures; notebook 06 and
    tests/test_models.py print and check them). `photos`: (1, 3, H, W) images in [0, 1];
    `targets`: `style_targets` of the model's paintings, `paintings` the images (for mean colours).

    * 'psnr': per photo, PSNR (dB) of the auto-encoder branch D(E(I)) against I (metrics.psnr);
      'psnr_colour_matched': the same after recolouring D(E(I)) to I's colour mean and covariance
      (color.match_histogram). With instance norm the encoder's first norm erases a photo's exposure and
      global colour, so the decoder can only guess them: the gap between the two is that guess's cost;
    * per photo x style, lists in photo-major order (the model's outputs clamped to [0, 1]):
      'style_distance' (the course's Gram style loss summed over STYLE_LAYERS, to its own painting),
      'photo_distance' (the photo's, to the same painting), 'nearest' (the index of the painting
      whose Gram statistics the output is nearest to), 'colour_to_painting' / 'colour_of_photo' (the
      Euclidean distance between the output's mean RGB and the painting's, and between the
      photo's mean RGB and the painting's), 'ssim' (luminance SSIM to the photo, metrics.ssim_luminance);
    * 'mean_colour': per style, the mean RGB of its outputs over the photos."""
    from . import metrics
    from .color import match_histogram

    def distances(image):
        feats = vgg.extract(image, STYLE_LAYERS)
        grams = {layer: gram(f.float()) for layer, f in feats.items()}
        return [sum(float(style_layer_loss(grams[l], t[l])) for l in STYLE_LAYERS) for t in targets]

    mean_rgb = [p.mean((0, 2, 3)) for p in paintings]
    out = {k: [] for k in ("psnr", "psnr_colour_matched", "style_distance", "photo_distance", "nearest", "colour_to_painting",
                           "colour_of_photo", "ssim")}
    colours = [[] for _ in targets]
    with torch.no_grad():
        for photo in photos:
            reconstruction = model(photo, None).clamp(0, 1)
            out["psnr"].append(metrics.psnr(reconstruction, photo))
            out["psnr_colour_matched"].append(metrics.psnr(match_histogram(reconstruction, photo), photo))
            photo_d, photo_rgb = distances(photo), photo.mean((0, 2, 3))
            for i in range(len(targets)):
                o = model(photo, i).clamp(0, 1)
                d = distances(o)
                rgb = o.mean((0, 2, 3))
                colours[i].append(rgb)
                out["style_distance"].append(d[i])
                out["photo_distance"].append(photo_d[i])
                out["nearest"].append(min(range(len(d)), key=d.__getitem__))
                out["colour_to_painting"].append(float((rgb - mean_rgb[i]).norm()))
                out["colour_of_photo"].append(float((photo_rgb - mean_rgb[i]).norm()))
                out["ssim"].append(float(metrics.ssim_luminance(o, photo)[0]))
    out["mean_colour"] = [torch.stack(c).mean(0).tolist() for c in colours]
    return out


def export_stylebank(model: StyleBank, path: str | Path, training: dict | None = None) -> str:
    """Save every weight in float16 (half the bytes), the style names and an optional record of
    how it was trained (`models.training_record` reads it back); atomic; returns the sha256."""
    from .training import save_checkpoint
    from .download import file_hash

    state = {k: v.detach().to("cpu", torch.float16) for k, v in model.state_dict().items()}
    path = save_checkpoint(path, {"kind": "stylebank", "widths": list(WIDTHS), "style_names": model.style_names,
                                  "style_norms": model.style_norms is not None,
                                  "instance_norm": model.instance_norm, "model": state,
                                  "training": training or {}})
    return file_hash(path)


def load_stylebank(path: str | Path) -> StyleBank:
    """A StyleBank saved by `export_stylebank`, in float32, eval mode, on the CPU."""
    from .training import load_checkpoint

    saved = load_checkpoint(path)
    if saved.get("kind") != "stylebank" or saved.get("widths") != list(WIDTHS):
        raise ValueError(f"{path} is not a StyleBank exported by this version of nstlib "
                         f"(kind {saved.get('kind')!r}, widths {saved.get('widths')})")
    # files written before style_norms existed hold the paper's network
    model = StyleBank(len(saved["style_names"]), saved["style_names"], style_norms=saved.get("style_norms", False),
                      instance_norm=saved.get("instance_norm", True))
    model.load_state_dict({k: v.float() for k, v in saved["model"].items()})
    return model.eval()


SHIPPED = "stylebank_4styles"  # name in data/models.tsv: per-style scales and shifts, no instance norm
SHIPPED_NORMS = "stylebank_4styles_norms"  # per-style decoder norms with the paper's instance norms, shipped before
SHIPPED_PAPER = "stylebank_4styles_paper"  # the paper's network, shipped first (notebook 06 compares all three)


def pretrained(paper_decoder: bool = False) -> StyleBank:
    """The StyleBank the project trained and ships (data/models/, hash-checked): one bank per
    style in `.style_names`, eval mode, on the CPU; move it with `.to(device)`. paper_decoder=True:
    the paper's network (no per-style decoder norms) shipped first, with its shared colour cast. The
    model shipped in between (instance norms, per-style decoder norms) is
    `load_stylebank(models.shipped_model(SHIPPED_NORMS))`."""
    from .models import shipped_model

    return load_stylebank(shipped_model(SHIPPED_PAPER if paper_decoder else SHIPPED))
