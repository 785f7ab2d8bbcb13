"""Solutions to the code exercises of notebook 05 (AdaIN); tests/test_solutions.py checks them."""
import torch


def wct(content: torch.Tensor, style: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """The whitening and colouring transform (Li et al., "Universal Style Transfer via Feature
    Transforms", NeurIPS 2017): AdaIN matches each channel's mean and std; WCT matches the whole
    covariance matrix, i.e. the centred Gram matrix of notebook 02.

        whiten:  z = E_c D_c^(-1/2) E_c^T (f_c - mu_c)      so that cov(z) = I
        colour:  t = E_s D_s^(1/2) E_s^T z + mu_s             so that cov(t) = cov(f_s)

    with cov = E D E^T the eigendecomposition of each image's (C, C) covariance. content: (B, C, H, W);
    style: (B or 1, C, H', W'). eps is added to the eigenvalues (features have many near-zero ones).
    """
    b, c, h, w = content.shape
    fc = content.reshape(b, c, h * w).double()  # (B, C, N): float64, eigh is fragile in float32
    fs = style.reshape(style.shape[0], c, -1).double()
    mu_c, mu_s = fc.mean(-1, keepdim=True), fs.mean(-1, keepdim=True)
    fc, fs = fc - mu_c, fs - mu_s
    cov_c = fc @ fc.transpose(1, 2) / fc.shape[-1]  # (B, C, C), biased like AdaIN's std
    cov_s = fs @ fs.transpose(1, 2) / fs.shape[-1]
    eye = torch.eye(c, dtype=fc.dtype, device=fc.device)
    d_c, e_c = torch.linalg.eigh(cov_c + eps * eye)
    d_s, e_s = torch.linalg.eigh(cov_s + eps * eye)
    whiten = e_c @ torch.diag_embed(d_c.clamp_min(eps).rsqrt()) @ e_c.transpose(1, 2)
    colour = e_s @ torch.diag_embed(d_s.clamp_min(eps).sqrt()) @ e_s.transpose(1, 2)
    out = colour @ (whiten @ fc) + mu_s  # (B, C, N)
    return out.reshape(b, c, h, w).to(content.dtype)


# ----------------------------------------------------------------------------- the graded exercise
# check("adain", adain) and check("adain_style_loss", adain_style_loss)

def _mean_std(x: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image and channel, over positions: mu and sigma = sqrt(biased var + eps), (B, C, 1, 1) each."""
    mu = x.mean(dim=(2, 3), keepdim=True)
    var = ((x - mu) ** 2).mean(dim=(2, 3), keepdim=True)  # biased: divide by H W
    return mu, (var + eps).sqrt()


def adain(content: torch.Tensor, style: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Huang & Belongie 2017, Eq. 8: AdaIN(x, y) = sigma(y) (x - mu(x)) / sigma(x) + mu(y).
    content: (B, C, H, W); style: (B or 1, C, H', W')."""
    mu_c, sd_c = _mean_std(content, eps)
    mu_s, sd_s = _mean_std(style, eps)
    return sd_s * (content - mu_c) / sd_c + mu_s


def adain_style_loss(output_feats: dict, style_feats: dict, eps: float = 1e-5) -> torch.Tensor:
    """Huang & Belongie 2017, Eq. 13: sum over the layers of ||mu(phi(g(t))) - mu(phi(s))||^2 +
    ||sigma(phi(g(t))) - sigma(phi(s))||^2, each ||.||^2 a mean over the B x C statistics (as the
    authors' code and nstlib.adain.decoder_losses). Both arguments: layer -> (B, C, H, W)."""
    total = 0.0
    for layer in style_feats:
        mu_o, sd_o = _mean_std(output_feats[layer], eps)
        mu_s, sd_s = _mean_std(style_feats[layer], eps)
        total = total + ((mu_o - mu_s) ** 2).mean() + ((sd_o - sd_s) ** 2).mean()
    return total
