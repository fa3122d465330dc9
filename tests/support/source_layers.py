"""The seed implementations as their source computes them (our own re-implementations of the
blog code, per docs/bin-rules.md), used as ground truth."""

import math

import torch
import torch.nn.functional as F


def seed000_spatial_pyramid_pool(x, levels, mode="max"):
    """spatial_pyramid_pool: kernel ceil(S/n), stride kernel, integer padding (sppnet-pytorch)."""
    B, _, H, W = x.shape
    outs = []
    for n in levels:
        kh, kw = math.ceil(H / n), math.ceil(W / n)
        ph, pw = (kh * n - H + 1) // 2, (kw * n - W + 1) // 2
        if mode == "max":
            y = F.max_pool2d(x, (kh, kw), stride=(kh, kw), padding=(ph, pw))
        else:
            y = F.avg_pool2d(x, (kh, kw), stride=(kh, kw), padding=(ph, pw))
        outs.append(y.reshape(B, -1))
    return torch.cat(outs, 1)


def seed003_spp_layer(x, num_levels, mode="max"):
    """SPPLayer: one square kernel H // 2**i, stride kernel, no padding."""
    B = x.shape[0]
    outs = []
    for i in range(num_levels):
        k = x.shape[2] // 2**i
        pool = F.max_pool2d if mode == "max" else F.avg_pool2d
        outs.append(pool(x, k, stride=k).reshape(B, -1))
    return torch.cat(outs, 1)


def adaptive_pyramid(x, levels, mode="max"):
    pool = F.adaptive_max_pool2d if mode == "max" else F.adaptive_avg_pool2d
    return torch.cat([pool(x, n).flatten(1) for n in levels], 1)
