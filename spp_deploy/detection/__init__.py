"""SPP-net detection: conv trunk once per image and scale, window SPP per proposal, fc6/fc7.

``detect`` is the whole pipeline (``pipeline``); ``SppNetZF5Detector`` the zoo model (``model``);
``export_detector`` writes trunk + head ONNX (``export``); ``load_boxes`` reads proposal files.
"""

from __future__ import annotations

from ..util.lazy import lazy_attributes

__all__ = ["detect", "SppNetZF5Detector", "WindowHead", "export_detector", "load_boxes", "choose_scales"]
_LAZY = {"detect": "pipeline", "SppNetZF5Detector": "model", "WindowHead": "model", "export_detector": "export",
         "load_boxes": "boxes", "choose_scales": "scales"}


__getattr__ = lazy_attributes(__name__, _LAZY, globals())
