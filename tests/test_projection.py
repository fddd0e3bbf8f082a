"""Dominant / bulk / interpolated projections and the alignment χ for an orthonormal basis."""
import pytest
import torch

from subspace_kit import alignment, alignment_squared, bulk, dominant, interpolate


@pytest.fixture
def basis_and_vector():
    gen = torch.Generator().manual_seed(0)
    U, _ = torch.linalg.qr(torch.randn(40, 4, generator=gen, dtype=torch.float64))
    g = torch.randn(40, generator=gen, dtype=torch.float64)
    return U, g


def test_dominant_projection_is_idempotent(basis_and_vector):
    U, g = basis_and_vector
    d = dominant(g, U)
    assert torch.allclose(dominant(d, U), d, atol=1e-12)
    assert float(torch.linalg.vector_norm(d - g)) > 0.1  # g is not already in span(U)


def test_bulk_projection_is_idempotent(basis_and_vector):
    U, g = basis_and_vector
    b = bulk(g, U)
    assert torch.allclose(bulk(b, U), b, atol=1e-12)
    assert torch.allclose(dominant(b, U), torch.zeros_like(b), atol=1e-12)


def test_bulk_projection_is_orthogonal_to_dominant(basis_and_vector):
    U, g = basis_and_vector
    assert abs(float(dominant(g, U) @ bulk(g, U))) <= 1e-12
    assert torch.allclose(U.T @ bulk(g, U), torch.zeros(U.shape[1], dtype=g.dtype), atol=1e-12)


def test_dominant_plus_bulk_is_the_vector(basis_and_vector):
    U, g = basis_and_vector
    assert torch.allclose(dominant(g, U) + bulk(g, U), g, atol=1e-12)


def test_dominant_part_lies_in_the_span(basis_and_vector):
    U, g = basis_and_vector
    d = dominant(g, U)
    assert torch.allclose(U @ (U.T @ g), d, atol=1e-12)
    assert torch.allclose(d, U @ torch.linalg.lstsq(U, g).solution, atol=1e-12)


def test_interpolate_spans_sgd_dom_and_bulk(basis_and_vector):
    U, g = basis_and_vector
    assert torch.allclose(interpolate(g, U, 1.0, 1.0), g, atol=1e-12)
    assert torch.allclose(interpolate(g, U, 1.0, 0.0), dominant(g, U), atol=1e-12)
    assert torch.allclose(interpolate(g, U, 0.0, 1.0), bulk(g, U), atol=1e-12)
    assert torch.allclose(interpolate(g, U, 0.5, 2.0), 0.5 * dominant(g, U) + 2.0 * bulk(g, U), atol=1e-12)


def test_alignment_is_between_zero_and_one(basis_and_vector):
    U, g = basis_and_vector
    chi = alignment(g, U)
    assert 0.0 < chi < 1.0
    expected = float(torch.linalg.vector_norm(dominant(g, U)) / torch.linalg.vector_norm(g))
    assert abs(chi - expected) <= 1e-12
    assert abs(alignment_squared(g, U) - chi**2) <= 1e-12
    assert alignment(U[:, 0] + U[:, 2], U) == pytest.approx(1.0, abs=1e-12)
    assert alignment(bulk(g, U), U) == pytest.approx(0.0, abs=1e-12)
    assert alignment(torch.zeros_like(g), U) == 0.0


def test_alignment_stays_in_range_for_many_random_vectors():
    gen = torch.Generator().manual_seed(1)
    U, _ = torch.linalg.qr(torch.randn(30, 3, generator=gen))  # float32: rounding must not push χ past 1
    for _ in range(50):
        g = torch.randn(30, generator=gen)
        g = g if torch.rand(1, generator=gen) < 0.5 else U @ (U.T @ g)
        assert 0.0 <= alignment(g, U) <= 1.0
