"""How each integer argument of a recorded pooling call follows the size of the axis it pools
(``fit``): a constant, floor/ceil(S / d), (S + c) // d, a padding (n * k - S + r) // 2 that fits n
ceil kernels, or a kernel a * S + b * stride + c; the bin counts that never change
(``fixed_counts``) and the named rule of ``bins.py`` a call's bins are (``rule_name``)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..ops import bins as _bins
from ..ops.size_dependent_pool import AxisPool, Lin, PoolSpec

LEGAL_UP_TO = 2048  # sizes listed in reports
NAMED_RULES = ("adaptive", "ceil_pad")  # what rule_name can find


def pair(v, default=None) -> tuple:
    if v is None or (isinstance(v, (tuple, list)) and len(v) == 0):
        return default
    if isinstance(v, (tuple, list)):
        return (v[0], v[0]) if len(v) == 1 else (v[0], v[1])
    return (v, v)


@dataclass
class Call:
    """One recorded call: its input's H and W, the function and its bound arguments."""

    h: int
    w: int
    name: str
    bound: dict


def is_legal(spec: PoolSpec, axis: AxisPool, S: np.ndarray) -> np.ndarray:
    """Where PyTorch accepts the call on this axis, for each size in S."""
    if spec.adaptive:
        return np.broadcast_to(np.asarray(axis.count(S, ops=_bins.NUMPY_OPS)) >= 0, S.shape)  # 0: an empty output
    k, s, p = axis.args(S, _bins.NUMPY_OPS)
    return np.broadcast_to(np.asarray(_bins.window_bins(S, k, s, p, 0, ceil_mode=spec.ceil_mode).valid), S.shape)


def fit_lin(points: dict[int, int], kernels: dict[int, int] | None = None, max_d: int = 256,
            ref: str = "k") -> Lin | None:
    """The simplest ``Lin`` through every (S, value): a constant, floor/ceil(S / d), (S + c) // d,
    or, given another argument at each S (``kernels``, named by ``ref``), the padding
    (n * k - S + r) // 2 or any a * S + b * ref + c (a kernel S - (n - 1) * s)."""
    vals = set(points.values())
    if len(vals) == 1:
        return Lin(0, vals.pop())
    S = np.array(list(points), dtype=np.int64)
    v = np.array([points[s] for s in points], dtype=np.int64)
    if kernels is not None and ref == "k":
        k = np.array([kernels[s] for s in points], dtype=np.int64)
        for n in range(1, _bins.MAX_LEVEL + 1):
            for r in (1, 0):
                if np.array_equal((n * k - S + r) // 2, v):
                    return Lin(-1, r, 2, n)
    for plain in (True, False):  # floor(S / d) and ceil(S / d) before any other (S + c) // d
        for d in range(1, max_d + 1):
            lo, hi = max(int((v * d - S).max()), 0), min(int(((v + 1) * d - S - 1).min()), d - 1)
            if lo <= hi and (not plain or lo == 0 or hi == d - 1):
                return Lin(1, 0 if lo == 0 else d - 1 if hi == d - 1 else lo, d)
    if kernels is not None and len(points) >= 3:  # exact integer affine a * S + b * ref + c
        r = np.array([kernels[s] for s in points], dtype=np.int64)
        A = np.stack([S, r, np.ones_like(S)], 1).astype(np.float64)
        a, b, c = (int(round(x)) for x in np.linalg.lstsq(A, v.astype(np.float64), rcond=None)[0])
        if b and np.array_equal(a * S + b * r + c, v):
            return Lin(a, c, 1, b, ref)
    return None


def _axis_points(calls: list[Call], axis: int, arg: str, default=None) -> dict[int, int] | str:
    """{S: value} of one argument on one axis; a reason when the value is not a function of S."""
    pts: dict[int, int] = {}
    for c in calls:
        S = (c.h, c.w)[axis]
        both = pair(c.bound[arg], default if default is None else pair(default(c)))
        v = both[axis]
        if v is None:  # adaptive output None: keep the axis
            v = S
        if not isinstance(v, int) or isinstance(v, bool):
            return f"{arg} is not an integer"
        if pts.setdefault(S, v) != v:
            return f"{arg} on {'HW'[axis]} depends on more than the {'HW'[axis]} of its input"
    return pts


def fit(calls: list[Call]) -> tuple[PoolSpec | None, str]:
    """The call's PoolSpec from its recorded calls, or (None, why); (None, "") for a call whose
    arguments never change and that the exporter handles itself (fixed windows, a global pool)."""
    name = calls[0].name
    if any(c.name != name for c in calls):
        return None, "a different pooling function at different sizes"
    b0 = calls[0].bound
    for flag in ("return_indices", "ceil_mode", "count_include_pad", "divisor_override", "dilation"):
        if flag in b0 and any(c.bound[flag] != b0[flag] for c in calls):
            return None, f"{flag} changes with the size"
    if b0.get("return_indices"):
        return None, "return_indices=True"
    if b0.get("divisor_override") is not None:
        return None, "divisor_override is set"
    if pair(b0.get("dilation", 1)) != (1, 1):
        return None, "dilation != 1"
    axes = []
    if name.startswith("adaptive"):
        for a in (0, 1):
            pts = _axis_points(calls, a, "output_size")
            if isinstance(pts, str):
                return None, pts
            lin = fit_lin(pts)
            if lin is None:
                return None, f"output size on {'HW'[a]} follows no rule found"
            axes.append(AxisPool(count=lin))
        if all(ax.count == Lin(0, 1) for ax in axes) and "avg" in name:
            return None, ""  # a global average pool: exported exactly as it is
        return PoolSpec(name, axes[0], axes[1]), ""
    for a in (0, 1):
        got = {}
        for arg, default in (("kernel_size", None), ("stride", lambda c: c.bound["kernel_size"]), ("padding", None)):
            pts = _axis_points(calls, a, arg, default)
            if isinstance(pts, str):
                return None, pts
            got[arg] = pts
        lins = [fit_lin(got["kernel_size"]), fit_lin(got["stride"]), fit_lin(got["padding"], got["kernel_size"])]
        if lins[0] is None and lins[1] is not None:  # a kernel that covers what the strides leave
            lins[0] = fit_lin(got["kernel_size"], got["stride"], ref="s")
        if any(lin is None for lin in lins):
            return None, f"kernel/stride/padding on {'HW'[a]} follow no rule found"
        axes.append(AxisPool(kernel=lins[0], stride=lins[1], padding=lins[2]))
    if all(x.constant for ax in axes for x in (ax.kernel, ax.stride, ax.padding)):
        return None, ""  # fixed windows: the exporter's own MaxPool/AveragePool
    spec = PoolSpec(name, axes[0], axes[1], bool(b0.get("ceil_mode", False)), bool(b0.get("count_include_pad", True)))
    return replace(spec, fixed=fixed_counts(spec)), ""


def fixed_counts(spec: PoolSpec) -> tuple[int, int]:
    """Per axis, the window count when it is the same at every legal size up to LEGAL_UP_TO, else 0."""
    S = np.arange(1, LEGAL_UP_TO + 1)
    out = []
    for axis in (spec.rows, spec.cols):
        legal = is_legal(spec, axis, S)
        k, s, p = axis.args(S[legal], _bins.NUMPY_OPS)
        counts = set(np.atleast_1d(_bins.window_count(S[legal], k, s, p, spec.ceil_mode)).tolist())
        out.append(counts.pop() if len(counts) == 1 else 0)
    return out[0], out[1]


def rule_name(spec: PoolSpec, up_to: int = 256) -> str:
    """``adaptive`` for adaptive pools, the named rule of ``bins.py`` a window pool's bins are at
    every size 1..up_to (both axes, same level per axis), else ``window``."""
    if spec.adaptive:
        return "adaptive"
    S = np.arange(1, up_to + 1)
    found = []
    for axis in (spec.rows, spec.cols):
        legal = is_legal(spec, axis, S)
        counts = {int(spec.out_size(int(s), axis, _bins.NUMPY_OPS)) for s in S[legal]}
        if len(counts) != 1:
            return "window"
        n = counts.pop()
        match = []
        for rule in NAMED_RULES:
            ok = True
            for s in S:
                named = _bins.axis_bins(rule, int(s), n)
                if bool(named.valid) != bool(legal[s - 1]):
                    ok = False
                elif legal[s - 1]:
                    got = spec.axis_bins(int(s), axis, np.arange(n))
                    same = np.array_equal(np.broadcast_to(got.start, (n,)), np.broadcast_to(named.start, (n,))) \
                        and np.array_equal(np.broadcast_to(got.end, (n,)), np.broadcast_to(named.end, (n,)))
                    if spec.mode == "avg":
                        same = same and np.array_equal(np.broadcast_to(got.span, (n,)), np.broadcast_to(named.span, (n,)))
                    ok = same
                if not ok:
                    break
            if ok:
                match.append(rule)
        found.append(match)
    common = [r for r in found[0] if r in found[1]]
    return common[0] if common else "window"
