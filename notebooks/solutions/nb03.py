"""Solutions to the code exercises of notebook 03 (Gatys style transfer); tests/test_solutions.py checks them."""
import torch


def cholesky_colour_transform(style: torch.Tensor, content: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A (3, 3) and b (3,) with A Sigma_S A^T = Sigma_C and b = mu_C - A mu_S, A = L_C L_S^-1 from the
    Cholesky factors Sigma = L L^T (Gatys et al. 2017, Sec. 5.2); style and content are (1, 3, H, W).
    Population covariances of the pixel colours, in float64."""
    def statistics(x):
        pixels = x[0].reshape(3, -1).double()  # (3, M): one column per pixel
        return pixels.mean(dim=1), torch.cov(pixels, correction=0)

    mu_s, cov_s = statistics(style)
    mu_c, cov_c = statistics(content)
    a = torch.linalg.cholesky(cov_c) @ torch.linalg.inv(torch.linalg.cholesky(cov_s))  # lower triangular
    return a, mu_c - a @ mu_s


# ----------------------------------------------------------------------------- the graded exercise
# check("style_layer_loss", ...), check("style_loss", ...), check("total_loss", ...), check("tv_loss", ...)

def style_layer_loss(g: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """Gatys et al. 2016, Eq. 4 with G = F F^T / M: E_l = ||G - A||_F^2 / (4 N_l^2), summed over the
    batch. g: (B, N, N); a: (B or 1, N, N)."""
    n = g.shape[-1]
    return ((g - a) ** 2).sum() / (4 * n**2)


def style_loss(features: dict, targets: dict, weights: dict) -> torch.Tensor:
    """Gatys et al. 2016, Eq. 5: L_style = sum_l w_l E_l over the layers of `targets`.
    features: layer -> (B, N, H, W); targets: layer -> (B or 1, N, N) Gram matrices; weights: layer -> w_l."""
    total = 0.0
    for layer, a in targets.items():
        b, n, h, w = features[layer].shape
        f = features[layer].reshape(b, n, h * w)
        g = f @ f.transpose(1, 2) / (h * w)  # (B, N, N)
        total = total + weights[layer] * style_layer_loss(g, a)
    return total


def total_loss(content: torch.Tensor, style: torch.Tensor, alpha: float, beta: float) -> torch.Tensor:
    """Gatys et al. 2016, Eq. 7: L_total = alpha L_content + beta L_style."""
    return alpha * content + beta * style


def tv_loss(image: torch.Tensor) -> torch.Tensor:
    """Total variation: the squared differences of horizontal and vertical neighbours, summed over
    every pixel, channel and image of a (B, C, H, W) batch."""
    dx = image[..., :, 1:] - image[..., :, :-1]  # (B, C, H, W-1)
    dy = image[..., 1:, :] - image[..., :-1, :]  # (B, C, H-1, W)
    return (dx**2).sum() + (dy**2).sum()
