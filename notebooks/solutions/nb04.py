"""Solutions to the code exercises of notebook 04 (style as MMD); tests/test_solutions.py checks them."""
import torch


def mmd2_linear(features: torch.Tensor, style_features: torch.Tensor) -> torch.Tensor:
    """MMD^2 with the linear kernel k(x, y) = x^T y between the feature vectors (columns) of two
    (1, N, H, W) feature maps. Expanding the three kernel sums gives ||mean(f) - mean(s)||^2:
    the linear kernel only compares the average feature vector."""
    f = features[0].flatten(1)  # (N, M)
    s = style_features[0].flatten(1)  # (N, M_s)
    return (f.mean(1) - s.mean(1)).pow(2).sum()


def mmd2_unbiased(x: torch.Tensor, y: torch.Tensor, sigma2: float) -> torch.Tensor:
    """The graded exercise, check("mmd2_unbiased", mmd2_unbiased): the unbiased estimate (U-statistic)
    of MMD^2 between samples x (m, N) and y (n, N) with the Gaussian kernel
    k(a, b) = exp(-||a - b||^2 / (2 sigma2)):

        MMD_u^2 = 1/(m(m-1)) sum_{a != b} k(x_a, x_b) + 1/(n(n-1)) sum_{a != b} k(y_a, y_b)
                  - 2/(m n) sum_{a, b} k(x_a, y_b)

    The a = b terms (each k(x_a, x_a) = 1) are left out: they are what makes the V-statistic biased."""
    def k(a, b):
        d2 = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)  # (len(a), len(b)) squared distances
        return torch.exp(-d2 / (2 * sigma2))

    m, n = x.shape[0], y.shape[0]
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    xx = (kxx.sum() - kxx.diagonal().sum()) / (m * (m - 1))
    yy = (kyy.sum() - kyy.diagonal().sum()) / (n * (n - 1))
    return xx + yy - 2 * kxy.mean()
