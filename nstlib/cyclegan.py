"""CycleGAN and pix2pix: Zhu, Park, Isola & Efros, "Unpaired Image-to-Image Translation using
Cycle-Consistent Adversarial Networks" (ICCV 2017); Isola, Zhu, Zhou & Efros, "Image-to-Image
Translation with Conditional Adversarial Networks" (CVPR 2017).

CycleGAN learns G: A -> B and F: B -> A from unpaired images, with discriminators D_B and D_A:

    L_GAN(G, D_B)  = E_b[(D_B(b) - 1)^2] + E_a[D_B(G(a))^2]        (least squares, LSGAN; Sec. 4)
    L_cyc(G, F)    = E_a ||F(G(a)) - a||_1 + E_b ||G(F(b)) - b||_1       (Eq. 2)
    L_identity     = E_b ||G(b) - b||_1 + E_a ||F(a) - a||_1              (Sec. 5.2)
    L = L_GAN(G, D_B) + L_GAN(F, D_A) + lambda L_cyc + 0.5 lambda L_identity,   lambda = 10

Networks (Appendix 7.2), images in [-1, 1] inside (tanh output), [0, 1] at the interface:

* ResNet generator: c7s1-64, d128, d256, n residual blocks R256 (9 at 256 px, 6 at 128 px), u128,
  u64, c7s1-3; instance norm, reflection padding, tanh.
* Discriminator: the 70x70 PatchGAN C64-C128-C256-C512, then a 1-channel convolution; no norm on
  C64, leaky ReLU 0.2. Each output value judges one 70x70 patch.

pix2pix, the paired contrast: a U-Net generator (encoder-decoder with skip connections), a PatchGAN
that sees the input and the output concatenated, and L1 plus the adversarial loss (cross-entropy):

    L_cGAN(G, D) = E_ab[log D(a, b)] + E_a[log(1 - D(a, G(a)))]                  (pix2pix Eq. 1)
    G* = arg min_G max_D L_cGAN(G, D) + lambda E_ab ||b - G(a)||_1,   lambda = 100   (Eq. 3, 4)

`CycleGAN` and `Pix2Pix` hold each method's networks; `export_generators` / `load_generators` save
and load a trained CycleGAN's pair. nstlib.cyclegan_training trains both.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

CYCLE_WEIGHT = 10.0  # lambda
IDENTITY_WEIGHT = 0.5  # times lambda
L1_WEIGHT = 100.0  # pix2pix


def to_tanh_range(x: torch.Tensor) -> torch.Tensor:
    return x * 2 - 1


def from_tanh_range(x: torch.Tensor) -> torch.Tensor:
    return (x + 1) / 2


# ----------------------------------------------------------------------------- ResNet generator

NORMS = ("instance", "none")


def norm_layer(kind: str, channels: int) -> nn.Module:
    """Instance norm (the paper's) or none. Instance norm without affine parameters, as in the
    authors' code; it removes each channel's mean and spread over the image, so a generator with
    it cannot see a crop's absolute colour, only its patterns (notebook 07 measures what that costs
    on a colour task)."""
    if kind not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {kind!r}")
    return nn.InstanceNorm2d(channels) if kind == "instance" else nn.Identity()


class ResidualBlock(nn.Module):
    """R256: two 3x3 convolutions with reflection padding and instance norm, plus the input."""

    def __init__(self, channels: int, norm: str = "instance"):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), norm_layer(norm, channels), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), norm_layer(norm, channels))

    def forward(self, x):
        return x + self.body(x)  # (B, C, H, W) -> (B, C, H, W)


class ResnetGenerator(nn.Module):
    """c7s1-64, d128, d256, `blocks` x R256, u128, u64, c7s1-3 with tanh; takes and returns
    images in [0, 1] (B, 3, H, W), H and W multiples of 4. `norm='none'` drops the instance norms."""

    def __init__(self, blocks: int = 9, width: int = 64, norm: str = "instance"):
        super().__init__()
        w = width
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(3, w, 7), norm_layer(norm, w), nn.ReLU(True)]  # c7s1-64
        for c_in, c_out in ((w, 2 * w), (2 * w, 4 * w)):  # d128, d256: 3x3 stride 2
            layers += [nn.Conv2d(c_in, c_out, 3, 2, 1), norm_layer(norm, c_out), nn.ReLU(True)]
        layers += [ResidualBlock(4 * w, norm) for _ in range(blocks)]
        for c_in, c_out in ((4 * w, 2 * w), (2 * w, w)):  # u128, u64: fractionally strided 3x3, stride 1/2
            layers += [nn.ConvTranspose2d(c_in, c_out, 3, 2, 1, output_padding=1), norm_layer(norm, c_out),
                       nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(w, 3, 7), nn.Tanh()]  # c7s1-3
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (B, 3, H, W) -> c7s1-64 (B, 64, H, W) -> d128 (B, 128, H/2, W/2) -> d256 (B, 256, H/4, W/4)
        # -> R256 x blocks (B, 256, H/4, W/4) -> u128 (B, 128, H/2, W/2) -> u64 (B, 64, H, W)
        # -> c7s1-3 (B, 3, H, W); channels for width 64
        _check_images(x, multiple=4)
        return from_tanh_range(self.net(to_tanh_range(x)))


# ----------------------------------------------------------------------------- PatchGAN

class PatchDiscriminator(nn.Module):
    """70x70 PatchGAN: C64 (no norm) - C128 - C256 - C512 (stride 1) - 1-channel conv, 4x4 kernels,
    leaky ReLU 0.2. Returns a (B, 1, h, w) map of real/fake scores, one per 70x70 patch.
    `in_channels` = 6 for pix2pix's conditional version (input and output concatenated)."""

    def __init__(self, in_channels: int = 3, width: int = 64):
        super().__init__()
        w = width
        layers = [nn.Conv2d(in_channels, w, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        for c_in, c_out, stride in ((w, 2 * w, 2), (2 * w, 4 * w, 2), (4 * w, 8 * w, 1)):
            layers += [nn.Conv2d(c_in, c_out, 4, stride, 1), nn.InstanceNorm2d(c_out), nn.LeakyReLU(0.2, True)]
        layers += [nn.Conv2d(8 * w, 1, 4, 1, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (B, in_channels, H, W) -> C64 (B, 64, H/2, W/2) -> C128 (B, 128, H/4, W/4) -> C256 (B, 256, H/8, W/8)
        # -> C512, stride 1 (B, 512, H/8 - 1, W/8 - 1) -> (B, 1, H/8 - 2, W/8 - 2): 30 x 30 scores at 256 px
        return self.net(to_tanh_range(x))


def receptive_field(model: PatchDiscriminator) -> int:
    """The size of the input patch one output value sees (70 for the default PatchGAN)."""
    size, jump = 1, 1
    convs = [m for m in model.net if isinstance(m, nn.Conv2d)]
    for conv in convs:
        size += (conv.kernel_size[0] - 1) * jump
        jump *= conv.stride[0]
    return size


# ----------------------------------------------------------------------------- U-Net (pix2pix)

class UNetGenerator(nn.Module):
    """pix2pix's U-Net: `depth` stride-2 4x4 convolutions down (C64-C128-C256-C512...), the same
    up with transposed convolutions, and a skip connection from each encoder level to its mirror
    (concatenated). Instance norm, ReLU / leaky ReLU 0.2, tanh output; H and W multiples of
    2^depth."""

    def __init__(self, depth: int = 7, width: int = 64):
        super().__init__()
        widths = [min(width * 2**i, 8 * width) for i in range(depth)]  # 64, 128, 256, 512, 512, ...
        self.depth = depth
        self.down = nn.ModuleList()
        c_in = 3
        for i, c in enumerate(widths):
            norm = [nn.InstanceNorm2d(c)] if 0 < i < depth - 1 else []
            self.down.append(nn.Sequential(nn.Conv2d(c_in, c, 4, 2, 1), *norm))
            c_in = c
        self.up = nn.ModuleList()
        for i in reversed(range(depth)):
            c_out = widths[i - 1] if i > 0 else 3
            c_in = widths[i] if i == depth - 1 else 2 * widths[i]  # skip connections double the input
            last = i == 0
            self.up.append(nn.Sequential(nn.ReLU(True), nn.ConvTranspose2d(c_in, c_out, 4, 2, 1),
                                         *([] if last else [nn.InstanceNorm2d(c_out)])))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_images(x, multiple=2**self.depth)
        h = to_tanh_range(x)  # (B, 3, H, W)
        skips = []
        for i, layer in enumerate(self.down):
            h = layer(h if i == 0 else F.leaky_relu(h, 0.2))  # level i: (B, widths[i], H / 2^(i+1), W / 2^(i+1))
            skips.append(h)
        h = self.up[0](skips[-1])  # from the bottom (B, widths[-1], H / 2^depth, .) up to H / 2^(depth-1)
        for layer, skip in zip(self.up[1:], reversed(skips[:-1])):
            # [h, skip] (B, 2 widths[i], H / 2^(i+1), .) -> (B, widths[i-1] or 3, H / 2^i, .)
            h = layer(torch.cat([h, skip], dim=1))  # the skip connection
        return from_tanh_range(torch.tanh(h))  # (B, 3, H, W)


# ----------------------------------------------------------------------------- the two methods' networks

class CycleGAN(nn.Module):
    """G: A -> B, F: B -> A, D_A and D_B (PatchGANs). The generators are the paper's ResNet
    generators (`blocks`, `width`, `norm`), or with generator='unet' pix2pix's U-Net of `depth`
    levels, an option the authors' code offers too (--netG unet_128 / unet_256)."""

    def __init__(self, blocks: int = 6, width: int = 64, norm: str = "instance", generator: str = "resnet",
                 depth: int = 7):
        super().__init__()
        if generator not in ("resnet", "unet"):
            raise ValueError(f"generator must be 'resnet' or 'unet', got {generator!r}")
        make = (lambda: ResnetGenerator(blocks, width, norm)) if generator == "resnet" else \
            (lambda: UNetGenerator(depth, width))
        self.G, self.F = make(), make()
        self.D_A, self.D_B = PatchDiscriminator(width=width), PatchDiscriminator(width=width)


class Pix2Pix(nn.Module):
    """G: A -> B (U-Net) and a conditional PatchGAN D on (a, b) concatenated."""

    def __init__(self, depth: int = 7, width: int = 64):
        super().__init__()
        self.G = UNetGenerator(depth, width)
        self.D = PatchDiscriminator(in_channels=6, width=width)


# ----------------------------------------------------------------------------- losses

def lsgan_loss(scores: torch.Tensor, real: bool) -> torch.Tensor:
    """Least-squares GAN loss: mean (D(x) - 1)^2 for real targets, mean D(x)^2 for fake."""
    return (scores - 1).pow(2).mean() if real else scores.pow(2).mean()


def cycle_loss(reconstructed: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """||F(G(a)) - a||_1, averaged over pixels (Eq. 2, one direction)."""
    return (reconstructed - original).abs().mean()


def bce_gan_loss(scores: torch.Tensor, real: bool) -> torch.Tensor:
    """The original GAN loss on logits s (pix2pix's): -mean log sigmoid(s) against real targets,
    -mean log(1 - sigmoid(s)) against fake ones (cross-entropy with all ones or all zeros)."""
    target = torch.ones_like(scores) if real else torch.zeros_like(scores)
    return F.binary_cross_entropy_with_logits(scores, target)


class ImagePool:
    """The history of generated images a discriminator trains on (Shrivastava et al. 2017; CycleGAN
    Sec. 4, size 50): until full, store and return each image; then with probability 1/2 return a
    stored image (and store the new one in its place), else the new image."""

    def __init__(self, size: int = 50, generator: torch.Generator | None = None):
        self.size, self.images = size, []
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif float(torch.rand(1, generator=self.generator)) < 0.5:
                i = int(torch.randint(self.size, (1,), generator=self.generator))
                out.append(self.images[i].clone())
                self.images[i] = image.clone()
            else:
                out.append(image)
        return torch.stack(out)

    def state_dict(self) -> dict:
        return {"images": [x.cpu() for x in self.images], "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.images = list(state["images"])
        self.generator.set_state(state["generator"])


def _check_images(x: torch.Tensor, multiple: int) -> None:
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"expected images (B, 3, H, W), got {tuple(x.shape)}")
    if x.shape[-1] % multiple or x.shape[-2] % multiple:
        raise ValueError(f"height and width must be multiples of {multiple}, got {tuple(x.shape[-2:])}")


# ----------------------------------------------------------------------------- generator files

def export_generators(G: nn.Module, F_: nn.Module, path, domains: tuple[str, str] = ("A", "B"),
                      settings: dict | None = None, training: dict | None = None) -> str:
    """Save a trained pair of ResNet generators, G: A -> B and F: B -> A, in float16 (half the
    bytes), with the domains' names, the generator settings (`blocks`, `width`, `norm`) and an
    optional training record (`models.training_record` reads it); atomic; returns the sha256."""
    from .training import save_checkpoint
    from .download import file_hash

    if not isinstance(G, ResnetGenerator) or not isinstance(F_, ResnetGenerator):
        raise ValueError("export_generators saves ResNet generators (the paper's), not U-Nets")
    half = lambda net: {k: v.detach().to("cpu", torch.float16).contiguous() for k, v in net.state_dict().items()}  # noqa: E731
    path = save_checkpoint(path, {"kind": "cyclegan", "domains": list(domains), "settings": dict(settings or {}),
                                  "G": half(G), "F": half(F_), "training": training or {}})
    return file_hash(path)


def load_generators(path) -> tuple[ResnetGenerator, ResnetGenerator]:
    """(G: A -> B, F: B -> A) saved by `export_generators`, in float32, eval mode, on the CPU."""
    from .training import load_checkpoint

    saved = load_checkpoint(path)
    if saved.get("kind") != "cyclegan":
        raise ValueError(f"{path} is not a CycleGAN generator pair exported by nstlib (kind {saved.get('kind')!r})")
    nets = []
    for key in ("G", "F"):
        net = ResnetGenerator(**saved["settings"])
        net.load_state_dict({k: v.float() for k, v in saved[key].items()})
        nets.append(net.eval())
    return nets[0], nets[1]


# pretrained() goes here when a CycleGAN is shipped (issue 21: horse2zebra), as in stylebank.pretrained().
