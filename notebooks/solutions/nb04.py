"""Solutions to the code exercises of notebook 04 (style as MMD); tests/test_solutions.py checks them."""
import torch


def mmd2_linear(features: torch.Tensor, style_features: torch.Tensor) -> torch.Tensor:
    """MMD^2 with the linear kernel k(x, y) = x^T y between the feature vectors (columns) f_a of one
    (1, N, H, W) feature map and s_b of the other, from the three kernel sums of its definition:

        MMD^2 = 1/M^2 sum_{a,b} f_a^T f_b + 1/M_s^2 sum_{a,b} s_a^T s_b - 2/(M M_s) sum_{a,b} f_a^T s_b

    Expanded: each double sum of dot products factorises, sum_{a,b} f_a^T f_b = (sum_a f_a)^T (sum_b f_b)
    = M^2 fbar^T fbar, and likewise the others, so MMD^2 = fbar^T fbar + sbar^T sbar - 2 fbar^T sbar
    = ||fbar - sbar||^2: the linear kernel compares only the average feature vectors."""
    f = features[0].flatten(1)  # (N, M): one column per position
    s = style_features[0].flatten(1)  # (N, M_s)
    m, m_s = f.shape[1], s.shape[1]
    k_ff, k_ss, k_fs = f.T @ f, s.T @ s, f.T @ s  # the kernel matrices: (M, M), (M_s, M_s), (M, M_s)
    return k_ff.sum() / m**2 + k_ss.sum() / m_s**2 - 2 * k_fs.sum() / (m * m_s)


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
