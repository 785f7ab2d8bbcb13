"""Solutions to the exercises of notebook 10 (measuring quality); tests/test_solutions.py checks them."""
import torch


# ----------------------------------------------------------------------------- the graded exercise
# check("bradley_terry_step", bradley_terry_step)

def bradley_terry_step(wins: torch.Tensor, strengths: torch.Tensor) -> torch.Tensor:
    """One MM update of the Bradley-Terry strengths (Hunter 2004): with W_i = sum_j wins[i, j] (the
    wins of i) and n_ij = wins[i, j] + wins[j, i] (the games between i and j),
    p_i <- W_i / sum_{j != i} n_ij / (p_i + p_j), then divided by the geometric mean so that the
    scores log p have mean 0. wins: (K, K), zero diagonal; strengths: (K,) positive."""
    games = wins + wins.T  # (K, K), zero diagonal: the j = i term adds nothing
    new = wins.sum(dim=1) / (games / (strengths[:, None] + strengths[None, :])).sum(dim=1)
    return new / torch.exp(torch.log(new).mean())
