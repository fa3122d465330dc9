"""TensorRT: engine building (shapes, plugin mode, precision, cache, metadata, build), the engine
runner, with NVIDIA's Polygraphy doing the generic build/run work (``poly``), and ``lint``: what
onnx-tensorrt's parser would refuse in a file, found without TensorRT. Importing any of these
needs neither TensorRT nor Polygraphy: both are imported when a build or a runner asks for them."""
