"""subspace_kit: see why SGD does not really happen in the Hessian's dominant subspace.

Curvature core: ``HessianOperator`` (HVPs), ``top_eigen`` (top-k eigenpairs),
``SubspaceTracker`` (warm-started per-step subspace), projections and alignment.
"""
from .eigen import EigenResult, top_eigen
from .hessian import HessianOperator
from .projection import alignment, alignment_squared, bulk, dominant, interpolate
from .tracker import SubspaceTracker

__version__ = "0.1.0"

__all__ = [
    "HessianOperator", "top_eigen", "EigenResult", "SubspaceTracker",
    "dominant", "bulk", "interpolate", "alignment", "alignment_squared",
]
