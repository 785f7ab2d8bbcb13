"""Solutions to the code exercises of notebook 03 (Gatys style transfer); tests/test_solutions.py checks them."""
import torch

# NTSC RGB -> YIQ: Y is the luminance, I and Q the chroma
RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114],
                           [0.595716, -0.274453, -0.321263],
                           [0.211456, -0.522591, 0.311135]])


def keep_colours(stylized: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """The luminance Y of `stylized` with the chroma I, Q of `content` (both (1, 3, H, W) in
    [0, 1], same size), back in RGB and clamped to [0, 1] (Gatys et al. 2017, Sec. 5.1)."""
    to_yiq = RGB_TO_YIQ.to(stylized)
    yiq_s = torch.einsum("ij,bjhw->bihw", to_yiq, stylized)  # (1, 3, H, W)
    yiq_c = torch.einsum("ij,bjhw->bihw", to_yiq, content)
    combined = torch.cat([yiq_s[:, :1], yiq_c[:, 1:]], dim=1)  # Y from the stylised image, IQ from the photo
    return torch.einsum("ij,bjhw->bihw", torch.linalg.inv(to_yiq), combined).clamp(0, 1)


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
