"""SPP layers in the style of public repositories (written here, not copied): the families the
exporter must reproduce exactly by probing, plus adversarial layers it must refuse."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class CeilKernelFloorStride(nn.Module):
    """kernel ceil(S/n), stride floor(S/n), no padding; fixed-length only at some sizes."""

    def __init__(self, levels=(4, 2, 1), mode="max"):
        super().__init__()
        self.levels, self.mode = levels, mode

    def forward(self, x):
        n_batch = x.size(0)
        h, w = int(x.size(2)), int(x.size(3))
        outs = []
        for n in self.levels:
            k = (math.ceil(h / n), math.ceil(w / n))
            s = (math.floor(h / n), math.floor(w / n))
            pool = F.max_pool2d if self.mode == "max" else F.avg_pool2d
            outs.append(pool(x, kernel_size=k, stride=s).view(n_batch, -1))
        return torch.cat(outs, 1)


class PadThenPool(nn.Module):
    """F.pad(value=0) split floor/ceil so the map divides into n x n, then kernel = stride."""

    def __init__(self, levels=(1, 2, 4), mode="max"):
        super().__init__()
        self.levels, self.mode = levels, mode

    def forward(self, x):
        h, w = x.shape[2:]
        feats = []
        for n in self.levels:
            kh, kw = math.ceil(h / n), math.ceil(w / n)
            ph, pw = kh * n - h, kw * n - w
            xp = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), mode="constant", value=0)
            if self.mode == "max":
                y = F.max_pool2d(xp, (kh, kw), (kh, kw))
            else:
                y = F.avg_pool2d(xp, (kh, kw), (kh, kw))
            feats.append(torch.flatten(y, 1))
        return torch.cat(feats, dim=1)


class ZeroPadSymmetric(nn.Module):
    """nn.ZeroPad2d with symmetric padding, then kernel ceil(S'/n), stride floor(S'/n) on the
    padded size S'; channel-outer output [B, C, L] flattened per channel."""

    def __init__(self, levels=(3, 2, 1), mode="max"):
        super().__init__()
        self.levels, self.mode = levels, mode

    def forward(self, x):
        b, c = x.shape[:2]
        res = []
        for n in self.levels:
            p = (n - x.shape[2] % n) % n // 2 + 1
            q = (n - x.shape[3] % n) % n // 2 + 1
            xp = nn.ZeroPad2d((q, q, p, p))(x)
            H, W = xp.shape[2], xp.shape[3]
            k = (-(-H // n), -(-W // n))
            s = (H // n, W // n)
            y = F.max_pool2d(xp, k, s) if self.mode == "max" else F.avg_pool2d(xp, k, s)
            res.append(y.reshape(b, c, -1))
        return torch.cat(res, dim=2).reshape(b, -1)


class Adaptive3D(nn.Module):
    """Adaptive pools kept 3-D [B, C, sum n^2] and concatenated per channel (flattened later)."""

    def __init__(self, sizes=(1, 2, 4), mode="max"):
        super().__init__()
        P = nn.AdaptiveMaxPool2d if mode == "max" else nn.AdaptiveAvgPool2d
        self.pools = nn.ModuleList([P(s) for s in sizes])

    def forward(self, x):
        return torch.cat([p(x).view(x.size(0), x.size(1), -1) for p in self.pools], dim=-1)


def spp_by_size(x, out_pool_size, height, width):
    """Sizes passed in by the caller; bin-major concatenation (Keras-like) with ceil kernels."""
    outs = []
    for n in out_pool_size:
        kh, kw = (height + n - 1) // n, (width + n - 1) // n
        y = F.max_pool2d(x, (kh, kw), (kh, kw), ceil_mode=True)
        outs.append(y.permute(0, 2, 3, 1).reshape(x.size(0), -1))
    return torch.cat(outs, 1)


class CallerSizes(nn.Module):
    def __init__(self, levels=(2, 1)):
        super().__init__()
        self.levels = levels

    def forward(self, x):
        return spp_by_size(x, self.levels, int(x.size(2)), int(x.size(3)))


# ---- free functions called from a forward that has parameters (the module itself is no SPP) ----

def pyramid_from_shape(feature, levels, hw):
    """Sizes passed as ``x.shape[2:]``; floor kernels with ceil_mode, channel-outer 3-D then flat."""
    h, w = hw
    outs = []
    for n in levels:
        k = (max(h // n, 1), max(w // n, 1))
        outs.append(F.max_pool2d(feature, k, k, ceil_mode=True)[:, :, :n, :n].reshape(feature.size(0), feature.size(1), -1))
    return torch.cat(outs, 2).flatten(1)


def avg_pyramid(x, height, width, levels=(2, 1)):
    """Keyword sizes; zero-padded avg bins (the pads count in the divisor)."""
    outs = []
    for n in levels:
        k = (-(-height // n), -(-width // n))
        xp = F.pad(x, (0, k[1] * n - width, 0, k[0] * n - height))
        outs.append(F.avg_pool2d(xp, k, k).flatten(1))
    return torch.cat(outs, 1)


def flatten_all(x):
    """Not SPP: its output length follows H and W."""
    return x.flatten(1)


class CallsFunctions(nn.Module):
    """A model (it has a parameter) whose forward calls pyramid functions with caller-computed
    sizes; scale is 1, so its outputs are exactly the functions' outputs."""

    def __init__(self, which="shape"):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))
        self.which = which

    def forward(self, x):
        x = x * self.scale
        if self.which == "shape":
            return torch.cat([pyramid_from_shape(x, (3, 1), x.shape[2:]),
                              pyramid_from_shape(x, (2,), x.shape[2:])], 1)
        if self.which == "avg":
            return avg_pyramid(x, height=int(x.size(2)), width=int(x.size(3)))
        return flatten_all(x)


# ---- adversarial: must be refused, never exported ----

class BothAxes(nn.Module):
    """The kernel along H comes from min(H, W): bins depend on both H and W."""

    def forward(self, x):
        m = min(x.shape[2], x.shape[3])
        return torch.cat([F.max_pool2d(x, (math.ceil(m / n), math.ceil(x.shape[3] / n)),
                                       (math.ceil(m / n), math.ceil(x.shape[3] / n)), ceil_mode=True)
                          [:, :, :n, :n].flatten(1) for n in (2, 1)], 1)


class FlatChunks(nn.Module):
    """Pools contiguous chunks of the row-major flattened map: bins are not rectangles."""

    def forward(self, x):
        f = x.flatten(2)
        L = int(f.shape[2])
        chunks = [f[:, :, (i * L) // 4: ((i + 1) * L + 3) // 4].amax(2) for i in range(4)]
        return torch.stack(chunks, 2).flatten(1)


class DataDependent(nn.Module):
    """Max where the map's mean is positive, avg otherwise: depends on the data."""

    def forward(self, x):
        y = F.adaptive_max_pool2d(x, 2) if float(x.mean()) > 0 else F.adaptive_avg_pool2d(x, 2)
        return y.flatten(1)


class Model(nn.Module):
    """conv -> SPP layer -> linear, the shape people deploy."""

    def __init__(self, spp: nn.Module, c_in=3, c=8, flatten=False):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c, 3, padding=1)
        self.spp = spp
        self.flatten = flatten

    def forward(self, x):
        y = self.spp(torch.relu(self.conv(x)))
        return y.flatten(1) if self.flatten else y
