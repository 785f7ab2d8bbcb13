"""Solutions to the code exercises of notebook 06 (StyleBank); tests/test_solutions.py checks them."""
import torch


def pooled_gram(features: torch.Tensor) -> torch.Tensor:
    """The batch-pooled Gram matrix that some public StyleBank code computes by mistake: the (B, N, H, W)
    features of the whole batch as one (N, B*H*W) matrix, G = F F^T / (B H W), shape (1, N, N). It is
    the mean of the per-sample Gram matrices, so images with opposite errors cancel in it."""
    b, n, h, w = features.shape
    f = features.transpose(0, 1).reshape(n, b * h * w)  # channel-major: every position of every sample
    return (f @ f.T / (b * h * w))[None]


# ----------------------------------------------------------------------------- the graded exercise
# check("bank_conv", bank_conv) and check("autoencoder_step", autoencoder_step)

def bank_conv(features: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """K_i (x) F: a style bank's 3x3 convolution of the encoder's (B, C_in, H, W) feature map with
    `weight` (C_out, C_in, 3, 3), no bias, after reflection padding of 1 so that H and W stay:
    (B, C_out, H, W). The bank is linear in F, which makes StyleBank's fusions exact."""
    padded = torch.nn.functional.pad(features, (1, 1, 1, 1), mode="reflect")  # (B, C_in, H+2, W+2)
    return torch.nn.functional.conv2d(padded, weight)


def autoencoder_step(step: int, T: int) -> bool:
    """The (T+1)-step alternation of StyleBank training: steps count from 0, each round is T
    stylising steps then one auto-encoder step, so step `step` is the auto-encoder's when
    step % (T + 1) == T (T = 2: S S A S S A ...)."""
    return step % (T + 1) == T
