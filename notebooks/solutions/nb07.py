"""Solutions to the code exercises of notebook 07 (CycleGAN); tests/test_solutions.py checks them."""
import torch
import torch.nn as nn


class ResizeConvUp(nn.Module):
    """Doubles H and W like the generator's ConvTranspose2d(c_in, c_out, 3, 2, 1, output_padding=1),
    but by nearest-neighbour upsampling followed by a 3x3 convolution (reflection padding). Every
    output pixel then sums the same number of kernel taps, so a constant image stays constant: no
    checkerboard from uneven overlap (Odena, Dumoulin & Olah, Distill 2016)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.conv = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(c_in, c_out, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.up(x))  # (B, c_out, 2H, 2W)


# ----------------------------------------------------------------------------- the graded exercise
# check("lsgan_generator_loss", ...), check("lsgan_discriminator_loss", ...), check("cycle_loss", ...)

def lsgan_generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """The generator's least-squares GAN loss: mean (D(G(a)) - 1)^2 over every patch score: G wants
    D to call its images real (1)."""
    return ((fake_scores - 1) ** 2).mean()


def lsgan_discriminator_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """The discriminator's least-squares loss, halved as in CycleGAN (so that D learns more slowly
    than G): 0.5 (mean (D(b) - 1)^2 + mean D(G(a))^2), each mean over its own scores."""
    return 0.5 * (((real_scores - 1) ** 2).mean() + (fake_scores**2).mean())


def cycle_loss(reconstructed: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """Cycle consistency, one direction (Zhu et al. 2017, Eq. 2): mean |F(G(a)) - a|, L1 averaged
    over pixels; the weight lambda = 10 is applied in the total loss."""
    return (reconstructed - original).abs().mean()
