"""The effective learning rates of the paper's Table 1 (notebook 10), for a stateful optimizer:
η_dom = ‖P Δθ‖ / ‖P g‖ and η_bulk = ‖(I − P) Δθ‖ / ‖(I − P) g‖ (Δθ = θ_t − θ_{t+1}).

For SGD both are η, so a swap of the two cannot be seen there; with momentum they differ, and
these tests fail if the engine logs one in the other's column.
"""
import math

import pytest
import torch

from subspace_kit.experiment import RunConfig, run
from subspace_kit.experiment.optimizers import UpdateRule, make_projection

LR, BETA = 0.1, 0.9


def test_heavy_ball_steps_by_hand_in_two_dimensions():
    # Dominant subspace = the first axis. g1 = (1, 1), g2 = (−1, 1): the dominant component
    # flips sign (the bouncing across a valley), the bulk one keeps it.
    rule = UpdateRule("momentum", lr=LR, momentum=BETA)
    identity = make_projection("none", None)
    d1 = rule.step(torch.tensor([1.0, 1.0], dtype=torch.float64), identity)
    d2 = rule.step(torch.tensor([-1.0, 1.0], dtype=torch.float64), identity)
    # b1 = g1, Δθ1 = η b1; b2 = β b1 + g2 = (−0.1, 1.9), Δθ2 = η b2.
    assert d1.tolist() == pytest.approx([LR, LR])
    assert d2.tolist() == pytest.approx([LR * (BETA - 1), LR * (BETA + 1)])
    # Hence at step 2: η_dom = |Δθ2[0]| / |g2[0]| = 0.1 η and η_bulk = |Δθ2[1]| / |g2[1]| = 1.9 η.
    U = torch.tensor([[1.0], [0.0]], dtype=torch.float64)
    P = make_projection("dom", U)
    Q = make_projection("bulk", U)
    g2 = torch.tensor([-1.0, 1.0], dtype=torch.float64)
    assert float(P(d2).norm() / P(g2).norm()) == pytest.approx(0.1 * LR)
    assert float(Q(d2).norm() / Q(g2).norm()) == pytest.approx(1.9 * LR)


@pytest.fixture(scope="module")
def momentum_rows(tmp_path_factory):
    # Plain momentum, no switch, χ (and a fresh basis) every 5 steps on 500 MNIST samples.
    cfg = RunConfig.preset("smoke", optimizer="momentum", modes=("none",), steps=40, switch_step=40,
                           switch_check_every=5, log_every=5)
    result = run(cfg, store=tmp_path_factory.mktemp("store"))
    return [r for r in result.warmup_rows("eff_lr_dom") if math.isfinite(r["eff_lr_bulk"])]


def test_first_momentum_step_is_sgd_in_both_subspaces(momentum_rows):
    first = momentum_rows[0]
    assert first["step"] == 0  # empty buffer: Δθ = η g exactly
    assert first["eff_lr_dom"] == pytest.approx(0.01, rel=1e-4)
    assert first["eff_lr_bulk"] == pytest.approx(0.01, rel=1e-4)


def test_logged_rates_follow_from_the_logged_alignments(momentum_rows):
    # With a = χ(g) (alignment_batch) and u = χ(Δθ) (alignment_update) on the same basis:
    # ‖P Δθ‖ = u‖Δθ‖, ‖P g‖ = a‖g‖, ‖(I−P) Δθ‖ = √(1−u²)‖Δθ‖, ‖(I−P) g‖ = √(1−a²)‖g‖, so
    # η_bulk / η_dom = (√(1−u²)/u) / (√(1−a²)/a), whatever ‖g‖ is. Swapped columns give the inverse.
    later = [r for r in momentum_rows if r["step"] > 0]
    assert len(later) >= 4
    ratios = []
    for r in later:
        a, u = r["alignment_batch"], r["alignment_update"]
        expected = (math.sqrt(1 - u * u) / u) / (math.sqrt(1 - a * a) / a)
        ratios.append(expected)
        assert r["eff_lr_bulk"] / r["eff_lr_dom"] == pytest.approx(expected, rel=2e-3)
    # The test has teeth only if momentum makes the two rates differ.
    assert max(abs(math.log(x)) for x in ratios) > 0.1
