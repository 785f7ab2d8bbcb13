"""Solutions to the exercises of notebook 09 (patches and photorealism); tests/test_solutions.py
checks them."""
import torch
import torch.nn.functional as F


# ----------------------------------------------------------------------------- the graded exercise
# check("mrf_energy", mrf_energy) and check("matting_energy", matting_energy)

def mrf_energy(features: torch.Tensor, style_patches: torch.Tensor) -> torch.Tensor:
    """Li & Wand 2016, Eq. 2 and 3: E_s = sum_i ||Psi_i(x) - Psi_NN(i)(s)||^2 over every k x k patch
    i (stride 1) of `features` (1, C, H, W), NN(i) the style patch (of `style_patches`, (P, C, k, k))
    with the largest normalised cross-correlation. The matching is a search, not differentiated."""
    k = style_patches.shape[-1]
    out = F.unfold(features, k)[0].t()  # (L, C*k*k): one row per output patch Psi_i
    style = style_patches.flatten(1)  # (P, C*k*k)
    with torch.no_grad():
        unit = style / style.norm(dim=1, keepdim=True).clamp_min(1e-12)
        nearest = (out @ unit.t()).argmax(dim=1)  # |Psi_i| is the same for every j: left out
    return (out - style[nearest]).pow(2).sum()


def matting_energy(output: torch.Tensor, laplacian: torch.Tensor) -> torch.Tensor:
    """Luan et al. 2017, Eq. 2: L_m = sum_c V_c^T M V_c, V_c channel c of the (1, 3, H, W) output
    flattened row by row (pixel i = y W + x), M the (H W) x (H W) matting Laplacian."""
    v = output[0].reshape(3, -1)  # (3, N)
    return ((v @ laplacian) * v).sum()


# ----------------------------------------------------------------------------- more exercises

def matting_laplacian_loops(image: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Levin et al. 2008, Eq. 12, by its definition: the dense (H W) x (H W) matting Laplacian of a
    (1, 3, H, W) image, summed window by window over the 3 x 3 windows w_k inside the image:

        M_ij += delta_ij - 1/|w_k| (1 + (I_i - mu_k)^T (Sigma_k + eps/|w_k| Id_3)^-1 (I_j - mu_k))

    for every pair i, j in w_k, mu_k and Sigma_k the mean and the (1/|w_k|) covariance of w_k's
    colours. Pixel i = y W + x. O(windows x 81) Python steps: a check, not a tool."""
    _, _, h, w = image.shape
    colours = image[0].double().reshape(3, -1).t()  # (N, 3): I_i, row-major
    m = torch.zeros(h * w, h * w, dtype=torch.float64)
    size = 9  # |w_k|
    for y in range(1, h - 1):
        for x in range(1, w - 1):
            index = torch.tensor([(y + dy) * w + (x + dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)])
            window = colours[index]  # (9, 3)
            mu = window.mean(0)
            centred = window - mu
            sigma = centred.t() @ centred / size
            inverse = torch.linalg.inv(sigma + eps / size * torch.eye(3, dtype=torch.float64))
            block = torch.eye(size, dtype=torch.float64) - (1 + centred @ inverse @ centred.t()) / size
            m[index[:, None], index[None, :]] += block
    return m
