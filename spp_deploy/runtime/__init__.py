"""Runtime: runners for each backend behind one interface, and the comparator.

Runners follow Polygraphy's shape: construct, use as a context manager, ``infer(feed)``.
Heavy backends (onnxruntime, tensorrt) are imported only when their runner is activated; the
names below load on first use, so the backend registry (``backends``) is read without torch.
"""

from ..util.lazy import lazy_attributes

__all__ = ["Runner", "Comparison", "compare_arrays"]

__getattr__ = lazy_attributes(__name__, {"Runner": "base", "Comparison": "compare", "compare_arrays": "compare"},
                              globals())
