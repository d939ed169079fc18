"""Ridge regression, used to warm-start `align` and as the least-squares baseline of the eval."""
from __future__ import annotations

import torch


def ridge_fit(x: torch.Tensor, y: torch.Tensor, shrinkage: float = 0.1) -> tuple[torch.Tensor, torch.Tensor, float]:
    """(W [in, out], b [out], train R²) minimising |x W + b − y|² + λ|W|², in float64.
    λ = shrinkage × the mean variance of x's features, so the setting does not depend on scale."""
    x, y = x.double(), y.double()
    xm, ym = x.mean(0), y.mean(0)
    xc, yc = x - xm, y - ym
    gram = xc.T @ xc
    lam = shrinkage * gram.trace() / gram.shape[0]
    w = torch.linalg.solve(gram + lam * torch.eye(gram.shape[0], dtype=gram.dtype), xc.T @ yc)
    r2 = 1 - float(((xc @ w - yc) ** 2).sum() / (yc ** 2).sum())
    return w, ym - xm @ w, r2
