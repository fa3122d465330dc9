"""A small stand-in for an ultralytics YOLO detection model, for tests that cannot install
ultralytics (it needs torchvision and opencv, which this environment lacks).

It reproduces the parts of ultralytics that an exporter meets (written here from their
behaviour, not copied):

- a model built from a YAML-like layer list by a ``parse_model`` that attaches ``i`` (index),
  ``f`` (from), ``type`` and ``np`` (parameter count) to every layer, and a save list;
- ``BaseModel._predict_once``: the loop that reads ``m.f`` to pick each layer's input(s) and
  keeps the outputs of the layers in ``self.save``;
- ``Conv`` sharing one class-level activation module, ``C2f``, ``SPP`` (parallel stride-1 max
  pools 5, 9, 13), ``Concat``, ``nn.Upsample``;
- a ``Detect`` head (anchor-free, DFL) whose anchors and strides are cached on the instance for
  the last input shape unless ``dynamic`` is set, and which returns ``(y, raw)`` unless
  ``export`` is set; ``stride`` is measured by a forward pass at build time.
"""

from __future__ import annotations

import torch
from torch import nn

# A YOLOv3-SPP-like detector at toy width: two detection scales (stride 8 and 16).
TINY_YOLO_SPP = {
    "nc": 3,
    "backbone": [
        # [from, repeats, module, args]
        [-1, 1, "Conv", [8, 3, 2]],  # 0 P1/2
        [-1, 1, "Conv", [16, 3, 2]],  # 1 P2/4
        [-1, 1, "C2f", [16, True]],  # 2
        [-1, 1, "Conv", [16, 3, 2]],  # 3 P3/8
        [-1, 1, "Conv", [32, 3, 2]],  # 4 P4/16
        [-1, 1, "SPP", [32, [5, 9, 13]]],  # 5
    ],
    "head": [
        [-1, 1, "Conv", [16, 1, 1]],  # 6
        [-1, 1, "nn.Upsample", [None, 2, "nearest"]],  # 7
        [[-1, 3], 1, "Concat", [1]],  # 8 cat P3
        [-1, 1, "C2f", [16, False]],  # 9 P3 out
        [[9, 5], 1, "Detect", ["nc"]],  # 10 Detect(P3, P4)
    ],
}


class Conv(nn.Module):
    """Conv2d (no bias) + BatchNorm2d + SiLU; every instance shares one activation module."""

    default_act = nn.SiLU()

    def __init__(self, c1: int, c2: int, k: int = 1, s: int = 1, g: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, k // 2, groups=g, bias=False)
        self.bn = nn.BatchNorm2d(c2)
        self.act = self.default_act

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class Bottleneck(nn.Module):
    def __init__(self, c1: int, c2: int, shortcut: bool = True) -> None:
        super().__init__()
        self.cv1, self.cv2 = Conv(c1, c2, 3), Conv(c2, c2, 3)
        self.add = shortcut and c1 == c2

    def forward(self, x):
        out = self.cv2(self.cv1(x))
        return x + out if self.add else out


class C2f(nn.Module):
    """Split the 1x1 conv's output in two, run bottlenecks on the second half, concat all."""

    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = False) -> None:
        super().__init__()
        self.c = c2 // 2
        self.cv1 = Conv(c1, 2 * self.c)
        self.cv2 = Conv((2 + n) * self.c, c2)
        self.m = nn.ModuleList(Bottleneck(self.c, self.c, shortcut) for _ in range(n))

    def forward(self, x):
        parts = list(self.cv1(x).chunk(2, 1))
        for block in self.m:
            parts.append(block(parts[-1]))
        return self.cv2(torch.cat(parts, 1))


class SPP(nn.Module):
    """Ultralytics' SPP block: 1x1 conv, stride-1 max pools of several sizes in parallel, concat."""

    def __init__(self, c1: int, c2: int, k=(5, 9, 13)) -> None:
        super().__init__()
        hidden = c1 // 2
        self.cv1 = Conv(c1, hidden)
        self.cv2 = Conv(hidden * (len(k) + 1), c2)
        self.m = nn.ModuleList(nn.MaxPool2d(kernel_size=size, stride=1, padding=size // 2) for size in k)

    def forward(self, x):
        x = self.cv1(x)
        return self.cv2(torch.cat([x, *(pool(x) for pool in self.m)], 1))


class Concat(nn.Module):
    def __init__(self, dimension: int = 1) -> None:
        super().__init__()
        self.d = dimension

    def forward(self, xs):
        return torch.cat(xs, self.d)


class DFL(nn.Module):
    """Distribution focal loss integral: expected bin index of a softmax over ``c1`` bins."""

    def __init__(self, c1: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c1, 1, 1, bias=False).requires_grad_(False)
        self.conv.weight.data[:] = torch.arange(c1, dtype=torch.float).view(1, c1, 1, 1)
        self.c1 = c1

    def forward(self, x):
        b, _, a = x.shape
        probs = x.view(b, 4, self.c1, a).transpose(2, 1).softmax(1)
        return self.conv(probs).view(b, 4, a)


def grid_anchors(feats, strides, offset: float = 0.5):
    """Cell centres (x, y) of every feature map, and each cell's stride, concatenated over levels."""
    points, cell_strides = [], []
    for f, s in zip(feats, strides):
        h, w = f.shape[2:]
        xs = torch.arange(w, dtype=f.dtype) + offset
        ys = torch.arange(h, dtype=f.dtype) + offset
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        points.append(torch.stack((gx, gy), -1).view(-1, 2))
        cell_strides.append(torch.full((h * w, 1), float(s), dtype=f.dtype))
    return torch.cat(points), torch.cat(cell_strides)


class Detect(nn.Module):
    """Anchor-free detection head with the caching and export switches of ultralytics' Detect."""

    dynamic = False  # rebuild anchors on every call
    export = False  # return only the decoded tensor
    format = None
    shape = None  # input shape the cached anchors were made for
    anchors = torch.empty(0)
    strides = torch.empty(0)

    def __init__(self, nc: int, ch: tuple, reg_max: int = 4) -> None:
        super().__init__()
        self.nc, self.nl, self.reg_max = nc, len(ch), reg_max
        self.no = nc + 4 * reg_max
        self.stride = torch.zeros(self.nl)
        c2, c3 = max(8, ch[0] // 4, 4 * reg_max), max(ch[0], nc)
        self.cv2 = nn.ModuleList(nn.Sequential(Conv(c, c2, 3), nn.Conv2d(c2, 4 * reg_max, 1)) for c in ch)
        self.cv3 = nn.ModuleList(nn.Sequential(Conv(c, c3, 3), nn.Conv2d(c3, nc, 1)) for c in ch)
        self.dfl = DFL(reg_max)

    def forward(self, x):
        for i in range(self.nl):
            x[i] = torch.cat((self.cv2[i](x[i]), self.cv3[i](x[i])), 1)
        if self.training:
            return x
        y = self._decode(x)
        return y if self.export else (y, x)

    def _decode(self, x):
        shape = x[0].shape
        flat = torch.cat([xi.view(shape[0], self.no, -1) for xi in x], 2)
        if self.dynamic or self.shape != shape:
            self.anchors, self.strides = (t.transpose(0, 1) for t in grid_anchors(x, self.stride))
            self.shape = shape
        box, cls = flat.split((4 * self.reg_max, self.nc), 1)
        lt, rb = self.dfl(box).chunk(2, 1)
        anchors = self.anchors.unsqueeze(0)
        x1y1, x2y2 = anchors - lt, anchors + rb
        boxes = torch.cat(((x1y1 + x2y2) / 2, x2y2 - x1y1), 1) * self.strides
        return torch.cat((boxes, cls.sigmoid()), 1)


MODULES = {"Conv": Conv, "C2f": C2f, "SPP": SPP, "Concat": Concat, "Detect": Detect, "nn.Upsample": nn.Upsample}


def parse_model(d: dict, ch: int) -> tuple[nn.Sequential, list[int]]:
    """Layers from the YAML-like dict, each tagged with i, f, type, np; and the save list."""
    chans, layers, save = [ch], [], []
    for i, (f, n, name, args) in enumerate(d["backbone"] + d["head"]):
        m = MODULES[name]
        args = [d[a] if isinstance(a, str) and a in d else a for a in args]
        if m in (Conv, C2f, SPP):
            c1, c2 = chans[f], args[0]
            args = [c1, c2, *args[1:]]
            if m is C2f:
                args.insert(2, n)
                n = 1
        elif m is Concat:
            c2 = sum(chans[j] for j in f)
        elif m is Detect:
            args.append([chans[j] for j in f])
        else:
            c2 = chans[f]
        layer = nn.Sequential(*(m(*args) for _ in range(n))) if n > 1 else m(*args)
        layer.np = sum(p.numel() for p in layer.parameters())
        layer.i, layer.f, layer.type = i, f, f"{m.__module__}.{m.__qualname__}"
        save.extend(j % i for j in ([f] if isinstance(f, int) else f) if j != -1)
        layers.append(layer)
        if i == 0:
            chans = []
        chans.append(c2)
    return nn.Sequential(*layers), sorted(save)


class DetectionModel(nn.Module):
    """``model.model`` is the layer list; forward runs ultralytics' ``_predict_once`` loop."""

    def __init__(self, cfg: dict = TINY_YOLO_SPP, ch: int = 3, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.yaml = cfg
        self.model, self.save = parse_model(cfg, ch)
        head = self.model[-1]
        s = 64
        self.train()
        with torch.no_grad():
            head.stride = torch.tensor([s / f.shape[-2] for f in self.forward(torch.zeros(1, ch, s, s))])
        self.stride = head.stride
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):  # non-trivial eval statistics
                m.eps, m.momentum = 1e-3, 0.03
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
            elif isinstance(m, nn.SiLU):
                m.inplace = True
        self.eval()

    def forward(self, x):
        return self._predict_once(x)

    def _predict_once(self, x):
        y = []
        for m in self.model:
            if m.f != -1:  # input from earlier layer(s)
                x = y[m.f] if isinstance(m.f, int) else [x if j == -1 else y[j] for j in m.f]
            x = m(x)
            y.append(x if m.i in self.save else None)
        return x


def legal_side(s: int) -> bool:
    """Sides the model takes: the upsampled stride-16 map must match the stride-8 map."""
    return 2 * -(-s // 16) == -(-s // 8)
