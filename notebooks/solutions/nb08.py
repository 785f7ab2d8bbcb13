"""Solutions to the code exercises of notebook 08 (fast feed-forward transfer); tests/test_solutions.py
checks them."""
import torch

from nstlib.johnson import ConditionalInstanceNorm2d, TransformNet, style_weights


def bake_style(cin_model: TransformNet, weights) -> TransformNet:
    """A one-style TransformNet (instance norm) that paints what `cin_model(x, weights)` paints.

    CIN(x, w) = (sum_i w_i gamma_i) * normalise(x) + sum_i w_i beta_i (Dumoulin et al., Eq. 5, mixed),
    so a fixed mix is an ordinary instance norm with gamma = w @ gammas and beta = w @ betas; every
    convolution is shared and copied as it is. The baked network is no faster: it runs the same
    convolutions, and a CIN layer's extra work (a (1, N) x (N, C) product) is negligible."""
    if not cin_model.n_styles:
        raise ValueError("bake_style needs a CIN network (TransformNet(n_styles=N))")
    w = style_weights(weights, cin_model.n_styles)  # (1, N), normalised to sum 1
    baked = TransformNet("instance", None, cin_model.widths, ["mix"])
    baked.input_scale = cin_model.input_scale
    state = {}
    with torch.no_grad():
        for name, module in cin_model.named_modules():
            if isinstance(module, ConditionalInstanceNorm2d):
                state[f"{name}.weight"] = (w @ module.weight)[0]  # (C,)
                state[f"{name}.bias"] = (w @ module.bias)[0]
        for name, tensor in cin_model.state_dict().items():
            state.setdefault(name, tensor)
    baked.load_state_dict(state)
    return baked.to(next(cin_model.parameters()).device).eval()


# ----------------------------------------------------------------------------- the graded exercise
# check("instance_norm", instance_norm) and check("johnson_gram", johnson_gram)

def instance_norm(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """Instance normalisation (Ulyanov et al. 2016) as in Johnson's network: per image and channel,
    x_hat = (x - mu) / sqrt(var + eps) with the biased variance (divide by H W), then
    gamma * x_hat + beta with gamma, beta of shape (C,). eps = 1e-3, nstlib.johnson.EPS."""
    mu = x.mean(dim=(2, 3), keepdim=True)  # (B, C, 1, 1)
    var = ((x - mu) ** 2).mean(dim=(2, 3), keepdim=True)
    x_hat = (x - mu) / torch.sqrt(var + eps)
    return gamma[None, :, None, None] * x_hat + beta[None, :, None, None]


def johnson_gram(features: torch.Tensor) -> torch.Tensor:
    """Johnson et al. 2016, Eq. 3: G_j(x) = F F^T / (C_j H_j W_j) per image, (B, C, C) from (B, C, H, W)."""
    b, c, h, w = features.shape
    f = features.reshape(b, c, h * w)  # (B, C, H*W)
    return f @ f.transpose(1, 2) / (c * h * w)
