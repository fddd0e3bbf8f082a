"""Reusable pieces of the "why" notebooks: toy problems with closed forms, and curvature tools
beyond the top-k eigenpairs.

- ``valley``: the 2-D ill-conditioned valley with stochastic losses ``L ± c·x·y``.
- ``quadratic``: the noisy quadratic; stationary variance and Dom/Bulk loss floors.
- ``eos``: Edge of Stability as Damian et al.'s self-stabilization in two variables.
- ``covariance``: dominant subspace from minibatch-gradient covariance (first order, DOME-style).
- ``angles``: principal angles between subspaces.
- ``gauss_newton``: the split ``H = G + F`` as operators.
- ``spectral_density``: stochastic Lanczos quadrature of the whole spectrum.
- ``along_run``: at a model of an engine run, Hessian vs gradient-covariance subspaces and the
  Gauss-Newton / functional split.
"""
from ._toy import METHODS, Trajectory
from .angles import largest_sine, principal_angles
from .covariance import CovarianceSubspace, covariance_basis, minibatch_gradients
from .eos import EdgeOrbit, EoSRun, ScalarFactorization, SelfStabilization, simulate_eos
from .gauss_newton import FunctionalOperator, GaussNewtonOperator, subspace_curvature
from .quadratic import NoisyQuadratic
from .spectral_density import SpectralDensity, spectral_density
from .valley import Valley
from .along_run import curvature_split, subspace_angles

__all__ = [
    "METHODS", "Trajectory", "Valley", "NoisyQuadratic",
    "SelfStabilization", "ScalarFactorization", "EdgeOrbit", "EoSRun", "simulate_eos",
    "CovarianceSubspace", "covariance_basis", "minibatch_gradients", "principal_angles", "largest_sine",
    "GaussNewtonOperator", "FunctionalOperator", "subspace_curvature",
    "SpectralDensity", "spectral_density", "subspace_angles", "curvature_split",
]
