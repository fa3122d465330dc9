"""Runtime: runners for each backend behind one interface, and the comparator.

Runners follow Polygraphy's shape: construct, use as a context manager, ``infer(feed)``.
Heavy backends (onnxruntime, tensorrt) are imported only when their runner is activated.
"""

from .base import Runner
from .compare import Comparison, compare_arrays

__all__ = ["Runner", "Comparison", "compare_arrays"]
