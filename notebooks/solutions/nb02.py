"""Solutions to the code exercises of notebook 02 (Gram matrices and texture); tests/test_solutions.py
checks them."""
import torch


def gram_loop(features: torch.Tensor) -> torch.Tensor:
    """G_ij = 1/M sum_k F_ik F_jk for one image's (1, N, H, W) features, with explicit loops over
    channel pairs: slow, but every term of the definition is visible. Returns (1, N, N)."""
    _, n, h, w = features.shape
    f = features[0].reshape(n, h * w)  # (N, M)
    g = torch.zeros(n, n, dtype=features.dtype)
    for i in range(n):
        for j in range(n):
            g[i, j] = (f[i] * f[j]).sum() / (h * w)
    return g[None]


def gram(features: torch.Tensor) -> torch.Tensor:
    """The graded exercise, check("gram", gram): G = F F^T / M for each image of a (B, N, H, W)
    batch, M = H W positions; returns (B, N, N)."""
    b, n, h, w = features.shape
    f = features.reshape(b, n, h * w)  # (B, N, M): row i is filter i over all positions
    return f @ f.transpose(1, 2) / (h * w)  # (B, N, N)
