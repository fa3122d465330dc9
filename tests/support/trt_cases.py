"""Shared by the TensorRT tests: the zoo model they build, profiles for the models they build, and
the fake ``tensorrt`` module with the real 10.x / 11.x enums."""

import importlib.util

import fake_tensorrt

HAVE_TRT = importlib.util.find_spec("tensorrt") is not None
NAME = "sppnet-pytorch"

PROF = dict(min_shape="input:1x512x8x8", opt_shape="input:1x512x16x16", max_shape="input:2x512x32x32")
PROF4 = dict(min_shape="input:1x4x8x8", opt_shape="input:1x4x16x16", max_shape="input:2x4x32x32")
WPROF = dict(min_shape="features:1x4x2x2,windows:1x5", opt_shape="features:1x4x8x8,windows:16x5",
             max_shape="features:2x4x16x16,windows:64x5")
SHAPES = dict(min_shape="input:1x3x8x8", opt_shape="input:1x3x16x16", max_shape="input:2x3x32x32")


def fake_trt(version="10.16.0", **kw):
    return fake_tensorrt.make(version, **kw)


def layers(trt):
    """The layers of the network the fake ``tensorrt`` last parsed."""
    net = trt.rec.network
    return [net.get_layer(i) for i in range(net.num_layers)]
