"""Pyramid pooling modules written the way public repositories write them (segmentation heads,
gait and word-spotting pyramids, SPP-net ports), by us, for the op-level tests. None is an SPP
layer by our definition: they upsample back to H x W, carry convolutions, pool with kernels
computed from the map's size, or keep odd layouts."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def conv_bn_relu(cin, cout, k=1):
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def _randomize_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    """Trained-looking batch-norm statistics (the defaults make BN an identity)."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    return model.eval()


class PSPModule(nn.Module):
    """PSPNet's pyramid pooling module: pool to 1, 2, 3, 6, reduce, upsample, concat with x."""

    def __init__(self, in_dim=8, reduction_dim=2, bins=(1, 2, 3, 6), align_corners=True, pool=nn.AdaptiveAvgPool2d,
                 mode="bilinear"):
        super().__init__()
        self.mode = mode
        self.align_corners = align_corners if mode != "nearest" else None
        self.features = nn.ModuleList([nn.Sequential(pool(b), *conv_bn_relu(in_dim, reduction_dim)) for b in bins])

    def forward(self, x):
        x_size = x.size()
        out = [x]
        for f in self.features:
            out.append(F.interpolate(f(x), x_size[2:], mode=self.mode, align_corners=self.align_corners))
        return torch.cat(out, 1)


class PSPNetHead(nn.Module):
    """A small backbone stub, the PPM and a classifier: what users export."""

    def __init__(self, classes=3, align_corners=True, pool=nn.AdaptiveAvgPool2d, mode="bilinear"):
        super().__init__()
        self.layer0 = conv_bn_relu(3, 8, 3)
        self.ppm = PSPModule(8, 2, align_corners=align_corners, pool=pool, mode=mode)
        self.cls = nn.Sequential(*conv_bn_relu(16, 8, 3), nn.Conv2d(8, classes, 1))
        _randomize_bn(self)

    def forward(self, x):
        return self.cls(self.ppm(self.layer0(x)))


class UPerPPM(nn.ModuleList):
    """The PPM of an UPerNet decode head (mmseg style: a ModuleList that is called)."""

    def __init__(self, pool_scales, in_channels, channels, align_corners):
        super().__init__()
        self.align_corners = align_corners
        for scale in pool_scales:
            self.append(nn.Sequential(nn.AdaptiveAvgPool2d(scale), *conv_bn_relu(in_channels, channels)))

    def forward(self, x):
        ppm_outs = []
        for ppm in self:
            ppm_out = ppm(x)
            upsampled = F.interpolate(ppm_out, size=x.size()[2:], mode="bilinear", align_corners=self.align_corners)
            ppm_outs.append(upsampled)
        return ppm_outs


class UPerHeadPSP(nn.Module):
    """UPerHead's psp_forward: [x] + PPM outputs, concatenated, then a 3x3 bottleneck."""

    def __init__(self, in_channels=8, channels=4, pool_scales=(1, 2, 3, 6)):
        super().__init__()
        self.psp_modules = UPerPPM(pool_scales, in_channels, channels, align_corners=False)
        self.bottleneck = conv_bn_relu(in_channels + len(pool_scales) * channels, channels, 3)
        _randomize_bn(self)

    def psp_forward(self, inputs):
        x = inputs[-1]
        psp_outs = [x]
        psp_outs.extend(self.psp_modules(x))
        psp_outs = torch.cat(psp_outs, dim=1)
        return self.bottleneck(psp_outs)

    def forward(self, x):
        return self.psp_forward([x])


class KernelPPM(nn.Module):
    """A PPM that pools with ``F.avg_pool2d(x, kernel_size=h // n)`` and upsamples bilinearly."""

    def __init__(self, in_ch=6, levels=(1, 2, 3, 6)):
        super().__init__()
        self.levels = levels
        self.convs = nn.ModuleList([nn.Conv2d(in_ch, 2, 1) for _ in levels])

    def forward(self, x):
        h, w = x.size(2), x.size(3)
        feats = [x]
        for level, conv in zip(self.levels, self.convs):
            kernel = (h // level, w // level)
            y = F.avg_pool2d(x, kernel_size=kernel, stride=kernel)
            feats.append(F.interpolate(conv(y), size=(h, w), mode="bilinear", align_corners=False))
        return torch.cat(feats, dim=1)


class CeilPadPPM(nn.Module):
    """Max pools with ceil kernels and the padding that makes n windows fit, bilinear upsampling,
    and the input last in the concat."""

    def __init__(self, in_ch=6, levels=(4, 2, 1)):
        super().__init__()
        self.levels = levels
        self.reduce = nn.ModuleList([nn.Conv2d(in_ch, 2, 1) for _ in levels])

    def forward(self, x):
        n, c, h, w = x.shape
        outs = []
        for i, level in enumerate(self.levels):
            kh, kw = math.ceil(h / level), math.ceil(w / level)
            ph, pw = (kh * level - h + 1) // 2, (kw * level - w + 1) // 2
            p = F.max_pool2d(x, kernel_size=(kh, kw), stride=(kh, kw), padding=(ph, pw))
            outs.append(F.interpolate(self.reduce[i](p), size=(h, w), mode="bilinear", align_corners=False))
        outs.append(x)
        return torch.cat(outs, 1)


class StripPooling(nn.Module):
    """SPNet's strip pooling: 1 x W and H x 1 strips, 1-D convolutions, expanded back and fused."""

    def __init__(self, in_ch=4):
        super().__init__()
        self.pool_h = nn.AdaptiveAvgPool2d((1, None))
        self.pool_w = nn.AdaptiveAvgPool2d((None, 1))
        self.conv_h = nn.Conv2d(in_ch, in_ch, (1, 3), padding=(0, 1), bias=False)
        self.conv_w = nn.Conv2d(in_ch, in_ch, (3, 1), padding=(1, 0), bias=False)
        self.fuse = nn.Conv2d(in_ch, in_ch, 1)

    def forward(self, x):
        _, _, h, w = x.size()
        x1 = F.interpolate(self.conv_h(self.pool_h(x)), (h, w), mode="bilinear", align_corners=True)
        x2 = F.interpolate(self.conv_w(self.pool_w(x)), (h, w), mode="bilinear", align_corners=True)
        return torch.sigmoid(self.fuse(F.relu(x1 + x2))) * x


class HorizontalPyramid(nn.Module):
    """Horizontal pyramid pooling (gait/person re-id style): 1, 2, 4, 8 horizontal strips, each
    pooled by mean + max, kept [B, C, 15]."""

    def __init__(self, bins=(1, 2, 4, 8)):
        super().__init__()
        self.bins = bins

    def forward(self, x):
        n, c = x.size()[:2]
        feature = []
        for b in self.bins:
            z = F.adaptive_avg_pool2d(x, (b, 1)) + F.adaptive_max_pool2d(x, (b, 1))
            feature.append(z.view(n, c, -1))
        return torch.cat(feature, 2)


class TemporalPyramid(nn.Module):
    """A temporal pyramid (word spotting): max over the whole height, n bins along the width."""

    def __init__(self, levels=(1, 2, 5)):
        super().__init__()
        self.levels = levels

    def forward(self, x):
        b = x.size(0)
        return torch.cat([F.adaptive_max_pool2d(x, (1, n)).view(b, -1) for n in self.levels], 1)


class MethodSPPNet(nn.Module):
    """An SPP-net port whose pyramid is a method taking ``self``, the batch and the sizes before
    the map (sppnet-pytorch's arithmetic: ceil kernels, padding to fit)."""

    def __init__(self, levels=(4, 2, 1)):
        super().__init__()
        self.levels = levels
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4 * sum(n * n for n in levels), 5)

    def spp(self, num_sample, previous_conv_size, previous_conv, out_pool_size):
        for i, n in enumerate(out_pool_size):
            h_wid = int(math.ceil(previous_conv_size[0] / n))
            w_wid = int(math.ceil(previous_conv_size[1] / n))
            h_pad = (h_wid * n - previous_conv_size[0] + 1) // 2
            w_pad = (w_wid * n - previous_conv_size[1] + 1) // 2
            x = F.max_pool2d(previous_conv, (h_wid, w_wid), stride=(h_wid, w_wid), padding=(h_pad, w_pad))
            spp = x.view(num_sample, -1) if i == 0 else torch.cat((spp, x.view(num_sample, -1)), 1)
        return spp

    def forward(self, x):
        x = F.relu(self.conv(x))
        return self.fc(self.spp(x.size(0), [int(x.size(2)), int(x.size(3))], x, self.levels))


class ZeroPadAvgPyramid(nn.Module):
    """An avg pyramid over a zero-padded map (nn.ZeroPad2d), ceil kernels and floor strides, kept
    [B, C, L]."""

    def __init__(self, levels=(3, 2, 1)):
        super().__init__()
        self.levels = levels
        self.pad = nn.ZeroPad2d(1)

    def forward(self, x):
        x = self.pad(x)
        h, w = x.size(2), x.size(3)
        out = []
        for n in self.levels:
            k = (math.ceil(h / n), math.ceil(w / n))
            s = (h // n, w // n)
            out.append(F.avg_pool2d(x, k, s).flatten(2))
        return torch.cat(out, 2)


class WithStem(nn.Module):
    """``layer`` behind a 3x3 convolution (what users export: the pyramid inside a network)."""

    def __init__(self, layer: nn.Module, channels: int = 4):
        super().__init__()
        self.stem = nn.Conv2d(3, channels, 3, padding=1)
        self.layer = layer

    def forward(self, x):
        return self.layer(self.stem(x))


class FloorKernelMaxPyramid(nn.Module):
    """Max pools with ``kernel_size = h // n`` (stride = kernel) and a ceil-mode level, every level
    flattened and concatenated: the length follows the size, so no table can hold it."""

    def __init__(self, levels=(2, 3, 5)):
        super().__init__()
        self.levels = levels

    def forward(self, x):
        h, w = x.shape[-2:]
        outs = []
        for n in self.levels:
            k = (h // n, w // n)
            outs.append(F.max_pool2d(x, k, ceil_mode=n == 5).flatten(2))
        return torch.cat(outs, 2)


class BothAxesKernel(nn.Module):
    """A kernel height read from the width: follows no per-axis rule (refused by name)."""

    def forward(self, x):
        w = x.size(3)
        return F.adaptive_max_pool2d(F.max_pool2d(x, (max(w // 3, 1), 2)), 2)


def spp(self, x, batch, size, levels):
    """A pyramid function written as a method body and called with ``self`` first, then the map,
    the batch and the sizes computed by the caller."""
    out = []
    for n in levels:
        k = (math.ceil(size[0] / n), math.ceil(size[1] / n))
        p = ((k[0] * n - size[0] + 1) // 2, (k[1] * n - size[1] + 1) // 2)
        out.append(F.max_pool2d(x, k, stride=k, padding=p).view(batch, -1))
    return torch.cat(out, 1)


class SelfFirstSPPNet(nn.Module):
    """Calls ``spp(self, x, batch, [h, w], levels)`` from forward, then a classifier."""

    def __init__(self, levels=(4, 2, 1)):
        super().__init__()
        self.levels = levels
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4 * sum(n * n for n in levels), 5)

    def forward(self, x):
        x = F.relu(self.conv(x))
        return self.fc(spp(self, x, x.size(0), [int(x.size(2)), int(x.size(3))], self.levels))


class CoverPPM(nn.Module):
    """A PPM whose windows step by floor(S / n) and whose kernel covers the rest,
    S - (n - 1) * stride (n windows, the last one ending at the border), avg, then bilinear."""

    def __init__(self, in_ch=4, levels=(2, 3, 4)):
        super().__init__()
        self.levels = levels
        self.proj = nn.Conv2d(in_ch, 2, 1)

    def forward(self, x):
        h, w = x.shape[2], x.shape[3]
        out = [x]
        for n in self.levels:
            stride = (h // n, w // n)
            kernel = (h - (n - 1) * stride[0], w - (n - 1) * stride[1])
            y = F.avg_pool2d(x, kernel, stride)
            out.append(F.interpolate(self.proj(y), (h, w), mode="bilinear", align_corners=True))
        return torch.cat(out, 1)


class PadThenPoolPPM(nn.Module):
    """A PPM that zero-pads the map with ``F.pad`` until n windows of ceil(S / n) fit, then pools
    with kernel = stride, upsamples bilinearly and concatenates."""

    def __init__(self, in_ch=4, bins=(1, 2, 3, 6), mode="max"):
        super().__init__()
        self.bins, self.mode = bins, mode
        self.reduce = nn.ModuleList([nn.Conv2d(in_ch, 1, 1) for _ in bins])

    def forward(self, x):
        h, w = x.shape[2:]
        outs = [x]
        for n, conv in zip(self.bins, self.reduce):
            kh, kw = math.ceil(h / n), math.ceil(w / n)
            ph, pw = kh * n - h, kw * n - w
            xp = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))
            y = F.max_pool2d(xp, (kh, kw)) if self.mode == "max" else F.avg_pool2d(xp, (kh, kw))
            outs.append(F.interpolate(conv(y), (h, w), mode="bilinear", align_corners=False))
        return torch.cat(outs, 1)
