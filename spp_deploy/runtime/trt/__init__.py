"""TensorRT: engine building (shapes, plugin mode, precision, cache, metadata, build), the engine
runner, and the CUDA driver fallback. Importing any of these needs no TensorRT: ``common`` imports
it lazily, when a build or a runner asks for it."""
