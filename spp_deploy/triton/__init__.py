"""Triton Inference Server model repositories for exported files (``spp-deploy triton``).

``tensors`` reads a file's inputs and outputs (ONNX, or a TensorRT engine through TensorRT),
``config`` turns them into Triton's ``ModelConfig`` message (``schema`` loads that message's
class from ``tritonclient``), ``repository`` lays out ``repo/NAME/config.pbtxt`` and
``repo/NAME/1/model.*``. Nothing here imports ``tritonclient`` or TensorRT until it is used.
"""
