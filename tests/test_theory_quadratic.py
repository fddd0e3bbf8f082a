"""The noisy quadratic: stationary variance, loss floors and alignment against closed forms."""
import numpy as np
import pytest
from scipy.stats import chi2

from subspace_kit.theory import NoisyQuadratic

LR, NOISE = 0.2, 0.1


def test_stationary_variance_matches_the_closed_form_within_sampling_error():
    # ηλ = 0.2, 1.0, 1.8: the −ηλ² correction changes the variance by 1.1x, 2x and 10x.
    q = NoisyQuadratic(sharp=[1.0, 5.0, 9.0], flat=[0.01, 0.02], noise=NOISE)
    chains = 20000
    run = q.simulate("sgd", lr=LR, steps=60, chains=chains, seed=3)  # transient (0.8)^120 ≈ 2e-12
    sample_var = run.final[:, :3].var(axis=0, ddof=1)
    exact = q.stationary_variance(LR)[:3]
    # Each coordinate is exactly Gaussian, so (N−1)·s²/σ² ~ χ²(N−1); two-sided 1e-6 per check.
    low, high = chi2.ppf([0.5e-6, 1 - 0.5e-6], chains - 1) / (chains - 1)
    ratio = sample_var / exact
    assert np.all((low < ratio) & (ratio < high)), ratio
    naive = LR * NOISE ** 2 / (2 * q.sharp)  # without the discretisation term: must be rejected
    assert not np.all((low < sample_var / naive) & (sample_var / naive < high))


def test_expected_loss_matches_the_monte_carlo_mean():
    q = NoisyQuadratic(sharp=[1.0, 2.0], flat=[0.05, 0.1, 0.2], noise=[0.1, 0.1, 0.3, 0.3, 0.3])
    for method in ("sgd", "dom_sgd", "bulk_sgd", "gd"):
        run = q.simulate(method, lr=LR, steps=100, chains=3000, seed=4)
        exact = q.expected_loss(method, lr=LR, steps=100)
        for t in (10, 100):
            sample = run.loss[t]
            standard_error = sample.std(ddof=1) / np.sqrt(len(sample))
            assert abs(sample.mean() - exact[t]) <= 5 * standard_error + 1e-12, (method, t)


def test_dom_and_bulk_loss_floors():
    q = NoisyQuadratic(sharp=[1.0, 3.0], flat=[0.01, 0.02, 0.03], noise=NOISE)
    start = np.array([0.5, -0.5, 1.0, 2.0, -1.0])
    sharp_noise = sum(LR * NOISE ** 2 / (2 * (2 - LR * lam)) for lam in (1.0, 3.0))
    flat_noise = sum(LR * NOISE ** 2 / (2 * (2 - LR * mu)) for mu in (0.01, 0.02, 0.03))
    frozen_y = 0.5 * (0.01 * 1.0 + 0.02 * 4.0 + 0.03 * 1.0)
    frozen_x = 0.5 * (1.0 * 0.25 + 3.0 * 0.25)
    assert q.loss_floor("dom_sgd", lr=LR, start=start) == pytest.approx(frozen_y + sharp_noise, rel=1e-12)
    assert q.loss_floor("bulk_sgd", lr=LR, start=start) == pytest.approx(frozen_x + flat_noise, rel=1e-12)
    assert q.loss_floor("sgd", lr=LR, start=start) == pytest.approx(sharp_noise + flat_noise, rel=1e-12)
    assert q.loss_floor("gd", lr=LR, start=start) == 0.0
    for method in ("dom_sgd", "bulk_sgd", "sgd"):
        late = q.expected_loss(method, lr=LR, steps=20000, start=start)[-1]
        assert late == pytest.approx(q.loss_floor(method, lr=LR, start=start), rel=1e-9)


def _few_sharp_many_flat():
    return NoisyQuadratic(sharp=[1.0, 0.8, 0.6], flat=np.linspace(1e-4, 1e-3, 50), noise=0.1)


def test_gradient_flow_alignment_goes_to_zero():
    gd = _few_sharp_many_flat().simulate("gd", lr=0.01, steps=3000)
    assert gd.alignment[0] > 0.9  # at the start the sharp components dominate ∇L
    assert gd.alignment[-1] < 1e-3


def test_sgd_noise_keeps_the_gradient_aligned():
    sgd = _few_sharp_many_flat().simulate("sgd", lr=0.1, steps=3000, seed=5)
    assert sgd.alignment[1000:].mean() > 0.95


def test_dominant_basis_is_the_sharp_coordinates():
    run = _few_sharp_many_flat().simulate("dom_sgd", lr=0.1, steps=2)
    assert np.allclose(run.basis[3:], 0.0)
    assert np.allclose(run.basis[:3].T @ run.basis[:3], np.eye(3))


def test_bad_arguments_raise_value_errors_naming_them():
    with pytest.raises(ValueError, match="every sharp curvature"):
        NoisyQuadratic(sharp=[1.0, 0.1], flat=[0.5])
    with pytest.raises(ValueError, match="noise"):
        NoisyQuadratic(sharp=[1.0], flat=[0.5], noise=[0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="flat"):
        NoisyQuadratic(sharp=[1.0], flat=[])
    with pytest.raises(ValueError, match="steps"):
        NoisyQuadratic(sharp=[1.0], flat=[0.5]).simulate("sgd", lr=0.1, steps=-1)
