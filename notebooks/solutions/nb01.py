"""Solutions to the code exercises of notebook 01 (content reconstruction); tests/test_solutions.py
checks them."""
import torch


def psnr(reference: torch.Tensor, image: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB of `image` against `reference`, both in [0, 1]:
    PSNR = 10 log10(1 / MSE), MSE the mean squared pixel difference."""
    mse = (reference.double() - image.double()).pow(2).mean()
    return float(10 * torch.log10(1.0 / mse))
