"""subspace_kit: see why SGD does not really happen in the Hessian's dominant subspace.

Curvature core: ``HessianOperator`` (HVPs), ``top_eigen`` (top-k eigenpairs) on any
``Operator`` (``@``, ``.shape``, ``.dtype``, ``.device``), ``lanczos_tridiagonal`` (the one
Lanczos kernel), ``SubspaceTracker`` (warm-started per-step subspace), projections and
alignment.
"""
from .eigen import EigenResult, NonFiniteOperatorError, lanczos_tridiagonal, top_eigen
from .hessian import HessianOperator
from .operators import Operator
from .projection import alignment, alignment_squared, bulk, dominant, interpolate
from .tracker import SubspaceTracker

__version__ = "0.1.0"

__all__ = [
    "HessianOperator", "top_eigen", "EigenResult", "SubspaceTracker", "Operator", "lanczos_tridiagonal",
    "NonFiniteOperatorError",
    "dominant", "bulk", "interpolate", "alignment", "alignment_squared",
]
