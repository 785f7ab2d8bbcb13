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
