"""Size-dependent pooling calls (op-level SPP): one ``max_pool2d`` / ``avg_pool2d`` /
``adaptive_*_pool2d`` call whose kernel, stride, padding or output size follow the input's H, W.

A ``PoolSpec`` says how each argument follows the pooled axis' size S (``Lin``: floor(S / n),
ceil(S / n), a constant, ...), as measured at a few sizes by ``spp_deploy.recognize.oplevel``.
This module evaluates it: eagerly (the original PyTorch call with the arguments at the concrete
size) and as the ``torch.library`` custom op ``spp_deploy::size_dependent_pool`` whose fake impl
gives the output shape symbolically; the exporter turns it into one ``spp_deploy.SizeDependentPool``
node, lowered by ``spp_deploy.export.size_pool`` with the bins of ``spp_deploy.ops.bins``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from . import bins as _bins

FUNCS = ("max_pool2d", "avg_pool2d", "adaptive_max_pool2d", "adaptive_avg_pool2d")


class PyOps(_bins.NumpyOps):
    """``bins`` arithmetic on Python ints and torch SymInts (the fake impl's symbolic shapes)."""

    minimum = staticmethod(lambda a, b: torch.sym_min(a, b))
    maximum = staticmethod(lambda a, b: torch.sym_max(a, b))

    @staticmethod
    def floordiv(a: Any, b: Any) -> Any:
        return a // b


PY_OPS = PyOps()


@dataclass(frozen=True)
class Lin:
    """An integer argument as a function of the pooled axis' size S and of another argument of
    that axis, ``ref`` (the kernel k for paddings such as (n * k - S + 1) // 2, the stride s for
    kernels such as S - (n - 1) * s): ``(a * S + b * ref + c) // d``."""

    a: int
    c: int
    d: int = 1
    b: int = 0
    ref: str = "k"  # "k": the kernel, "s": the stride

    def __call__(self, S: Any, k: Any = 0, ops: Any = PY_OPS) -> Any:
        terms = [t for t in ((S if self.a == 1 else S * self.a) if self.a else None,
                             (k * self.b) if self.b else None) if t is not None]
        v = terms[0] if terms else self.c
        for t in terms[1:]:
            v = v + t
        if terms and self.c:
            v = v + self.c
        return ops.floordiv(v, self.d) if self.d != 1 else v

    @property
    def constant(self) -> bool:
        return self.a == 0 and self.b == 0

    def describe(self) -> str:
        if self.constant:
            return str(self.c // self.d)
        if (self.a, self.b, self.c, self.d) == (1, 0, 0, 1):
            return "S"
        if self.b == 0 and self.a == 1:
            if self.c == 0:
                return f"floor(S/{self.d})"
            if self.c == self.d - 1:
                return f"ceil(S/{self.d})"
        terms = [(self.a, "S"), (self.b, f"{self.ref}"), (self.c, "")]
        terms = [(v, name) for v, name in terms if v]
        terms.sort(key=lambda t: t[0] < 0)  # positive terms first: "4*k - S + 1", "S - 2*s"
        s = ""
        for v, name in terms:
            body = name if abs(v) == 1 and name else f"{abs(v)}*{name}" if name else str(abs(v))
            s = (f"-{body}" if v < 0 else body) if not s else f"{s} {'-' if v < 0 else '+'} {body}"
        return f"({s})//{self.d}" if self.d != 1 else s


@dataclass(frozen=True)
class AxisPool:
    """One axis of a pooling call: ``count`` bins (adaptive) or windows of ``kernel``, ``stride``,
    ``padding`` (max/avg pool)."""

    count: Lin | None = None
    kernel: Lin | None = None
    stride: Lin | None = None
    padding: Lin | None = None

    def args(self, S: Any, ops: Any = PY_OPS) -> tuple:
        if self.count is not None:
            return (self.count(S, ops=ops),)
        s = self.stride(S, ops=ops)
        k = self.kernel(S, s, ops=ops) if self.kernel.ref == "s" else self.kernel(S, ops=ops)
        return k, s, self.padding(S, s if self.padding.ref == "s" else k, ops=ops)

    def describe(self) -> str:
        if self.count is not None:
            return f"bins {self.count.describe()}"
        return f"kernel {self.kernel.describe()}, stride {self.stride.describe()}, padding {self.padding.describe()}"


@dataclass(frozen=True)
class PoolSpec:
    """One recorded call site's pooling, as a function of its input's H and W."""

    func: str
    rows: AxisPool
    cols: AxisPool
    ceil_mode: bool = False
    count_include_pad: bool = True
    fixed: tuple[int, int] = (0, 0)  # bins per axis when the same at every legal size (0: follows S)
    key: str = field(default="", init=False, compare=False)

    def __post_init__(self) -> None:
        if self.func not in FUNCS:
            raise ValueError(f"unknown pooling function {self.func!r}")
        key = hashlib.sha1(repr((self.func, self.rows, self.cols, self.ceil_mode, self.count_include_pad,
                                 self.fixed)).encode()).hexdigest()[:16]
        object.__setattr__(self, "key", key)
        _REGISTRY[key] = self

    @property
    def mode(self) -> str:
        return "max" if "max" in self.func else "avg"

    @property
    def adaptive(self) -> bool:
        return self.func.startswith("adaptive")

    def out_size(self, S: Any, axis: AxisPool, ops: Any = PY_OPS) -> Any:
        """Bins on one axis of size S (windows: at least 1, sizes where the call is illegal give NaN). A
        count that is the same at every legal size is that int: the graph's shapes stay static
        where the source's are (a classifier after a fixed-length pyramid)."""
        fixed = self.fixed[0 if axis is self.rows else 1]
        if fixed:
            return fixed
        if axis.count is not None and axis.count.constant:
            return max(axis.count(0), 0)
        if self.adaptive:  # an output size of 0 is PyTorch's empty output
            return ops.maximum(axis.count(S, ops=ops), 0)
        k, s, p = axis.args(S, ops)
        return _bins.window_count(S, k, s, p, self.ceil_mode, ops)

    def axis_bins(self, S: Any, axis: AxisPool, i: Any, ops: Any = _bins.NUMPY_OPS) -> _bins.AxisBins:
        """The bins of one axis: ``bins.py``'s ``adaptive`` rule or PyTorch's pooling windows."""
        if self.adaptive:
            n = axis.count(S, ops=ops)
            ab = _bins.get_rule("adaptive").axis_bins(S, ops.maximum(n, 1), i, ops, S)
            return ab._replace(valid=ops.logical_and(ab.valid, n >= 1))
        k, s, p = axis.args(S, ops)
        ab = _bins.window_bins(S, k, s, p, i, ops, self.ceil_mode)
        return ab if self.count_include_pad else ab._replace(span=ab.end - ab.start)

    def call_args(self, h: int, w: int) -> dict:
        """The PyTorch call's arguments at a concrete input size."""
        if self.adaptive:
            return {"output_size": (self.rows.args(h)[0], self.cols.args(w)[0])}
        (kh, sh, ph), (kw, sw, pw) = self.rows.args(h), self.cols.args(w)
        a = {"kernel_size": (kh, kw), "stride": (sh, sw), "padding": (ph, pw), "ceil_mode": self.ceil_mode}
        if self.mode == "avg":
            a["count_include_pad"] = self.count_include_pad
        return a

    def describe(self) -> str:
        d = f"H: {self.rows.describe()}; W: {self.cols.describe()}"
        return d + ("; ceil_mode" if self.ceil_mode else "")


_REGISTRY: dict[str, PoolSpec] = {}


def get_spec(key: str) -> PoolSpec:
    try:
        return _REGISTRY[key]
    except KeyError:
        raise ValueError(f"no size-dependent pool with key {key!r} in this process") from None


def pool_eager(x: torch.Tensor, spec: PoolSpec) -> torch.Tensor:
    """The recorded call at x's size: PyTorch's own pooling with the arguments the spec gives."""
    return getattr(F, spec.func)(x, **spec.call_args(int(x.shape[-2]), int(x.shape[-1])))


@torch.library.custom_op("spp_deploy::size_dependent_pool", mutates_args=())
def size_dependent_pool(x: torch.Tensor, key: str) -> torch.Tensor:
    return pool_eager(x, get_spec(key))


@size_dependent_pool.register_fake
def _(x, key):
    spec = get_spec(key)
    h, w = x.shape[-2], x.shape[-1]
    return x.new_empty((*x.shape[:-2], spec.out_size(h, spec.rows), spec.out_size(w, spec.cols)))
