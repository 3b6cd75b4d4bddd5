"""The LASSO path of regression pruning (issue 19, item 4): the exact path, continuous, converged everywhere."""
import warnings

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Lasso

import pruneviz
from pruneviz.criteria.regression import Features, lasso_coefficients, layer_features


def _kkt_error(features: Features, alphas: np.ndarray, coefs: np.ndarray) -> float:
    """The worst violation of the LASSO's optimality conditions over the path, relative to the first alpha:
    active coefficients have z_c^T r / M = alpha sign(beta_c), inactive ones |z_c^T r| / M <= alpha."""
    z = features.contributions().reshape(-1, features.x.shape[1]).numpy()
    y = features.y.reshape(-1).numpy()
    worst = 0.0
    for alpha, beta in zip(alphas, coefs.T):
        grad = z.T @ (y - z @ beta) / len(y)
        active = beta != 0
        if active.any():
            worst = max(worst, np.abs(grad[active] - alpha * np.sign(beta[active])).max())
        if (~active).any():
            worst = max(worst, (np.abs(grad[~active]) - alpha).max())
    return worst / alphas[0]


def test_the_path_of_a_real_layer_is_the_lasso_at_every_penalty_and_continuous(digits):
    model = pruneviz.zoo.load("digits-cnn", device="cpu")
    features = layer_features(model, "conv3", digits.val, positions=256)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # converged: nothing to warn about
        alphas, coefs = lasso_coefficients(features)
    assert np.all(np.diff(alphas) < 0) and alphas[-1] == 0.0
    assert _kkt_error(features, alphas, coefs) < 1e-9
    # continuous: between two breakpoints the solution is the straight line joining them (checked against a
    # coordinate descent run to convergence at the midpoint of the widest segment)
    z = features.contributions().reshape(-1, 64).numpy()
    y = features.y.reshape(-1).numpy()
    k = int(np.argmax(-np.diff(np.log(alphas[:-1]))))
    mid = np.sqrt(alphas[k] * alphas[k + 1])
    t = (alphas[k] - mid) / (alphas[k] - alphas[k + 1])
    between = (1 - t) * coefs[:, k] + t * coefs[:, k + 1]
    exact = Lasso(alpha=mid, fit_intercept=False, tol=1e-12, max_iter=200_000).fit(z, y).coef_
    np.testing.assert_allclose(between, exact, atol=1e-4 * np.abs(exact).max())
    # at alpha = 0 the channels that carry anything sum to y: every such beta is 1
    live = np.abs(z).sum(0) > 0
    np.testing.assert_allclose(coefs[live, -1], 1.0, atol=1e-6)


def test_orthogonal_channels_leave_zero_at_their_correlation_and_grow_monotonically():
    """Orthogonal channels: the LASSO soft-thresholds each coefficient, so channel c is selected from
    alpha = |z_c^T y| / M down, and |beta_c| only grows as alpha falls (no overshoot, no jump)."""
    gen = torch.Generator().manual_seed(0)
    n, channels = 120, 6
    q, _ = torch.linalg.qr(torch.randn(n, channels, generator=gen, dtype=torch.float64))
    x = (q * torch.linspace(1.0, 3.0, channels, dtype=torch.float64)).unsqueeze(-1)  # [n, C, 1], orthogonal
    weight = torch.ones(1, channels, 1, dtype=torch.float64)
    y = torch.einsum("ncm,ocm->no", x, weight) * torch.tensor([1.0], dtype=torch.float64)
    features = Features(x, weight * torch.linspace(0.2, 1.5, channels, dtype=torch.float64).view(1, -1, 1), y)
    alphas, coefs = lasso_coefficients(features)
    z = features.contributions().reshape(-1, channels).numpy()
    target = features.y.reshape(-1).numpy()
    entry = np.abs(z.T @ target) / len(target)
    for c in range(channels):
        selected = np.flatnonzero(coefs[c] != 0)
        assert alphas[selected[0] - 1] == np.float64(entry[c]) or np.isclose(alphas[selected[0] - 1], entry[c])
        assert np.all(np.diff(np.abs(coefs[c])) >= -1e-12)  # alphas fall along the path: |beta| never shrinks
    assert _kkt_error(features, alphas, coefs) < 1e-12
