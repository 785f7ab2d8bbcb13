"""Solutions to the code exercises of notebook 01 (content reconstruction); tests/test_solutions.py
checks them."""
import torch


def psnr(reference: torch.Tensor, image: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB of `image` against `reference`, both in [0, 1]:
    PSNR = 10 log10(1 / MSE), MSE the mean squared pixel difference."""
    mse = (reference.double() - image.double()).pow(2).mean()
    return float(10 * torch.log10(1.0 / mse))


# ----------------------------------------------------------------------------- the graded exercise
# check("content_loss", content_loss) and check("closure", closure) (nstlib.exercises)

def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Gatys et al. 2016, Eq. 1: L_content = 1/2 sum_ij (F_ij - P_ij)^2, summed over every entry of
    the (B, N, H, W) features (the batch included); a 0-dim tensor."""
    return 0.5 * ((features - target) ** 2).sum()


def closure(optimizer: torch.optim.Optimizer, image: torch.Tensor, loss_fn) -> torch.Tensor:
    """One evaluation for `optimizer.step(lambda: closure(optimizer, image, loss_fn))`: clear the
    gradient left by the previous evaluation, compute the loss at the current image, backpropagate
    it into image.grad, and return it. L-BFGS calls it several times per step (its line search
    evaluates trial points), so it must not call optimizer.step() itself."""
    optimizer.zero_grad()
    loss = loss_fn(image)
    loss.backward()
    return loss
