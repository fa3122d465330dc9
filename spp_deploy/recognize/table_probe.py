"""Measure an unknown SPP layer's bins as a black box, for every size of each axis up to a limit.

The layer is any parameter-free callable [B, C, H, W] -> [B, F] / [B, C, L] / [B, L, C]. Along
one axis (the other held at a fixed legal size) each size S is probed with inputs that are
constant across the other axis and channels and encode positions:

- ones, ``h + 1`` and ``S - h``: max mode reads each bin's last and first real index directly;
- ``-1``: max mode returns 0 exactly where the bin also covers zero padding;
- ``(h + 1)^2`` (avg mode, float64): first and second moments give each bin's start and width;
  the ones probe gives the divisor.

Sizes where the layer raises or changes its output length are illegal. The result is only
accepted after ``verify`` has run the tabulated op against the layer on random data at random
(H, W) pairs, real channel count and batch 2 (max: bit-identical, NaN included); every failure
becomes a ``TabulateError`` whose message says what was found.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from ..ops.table_pyramid import AxisTable, TableSpec, tabulated_eager
from ..util.constants import DEFAULT_TABULATE_LIMIT

DEFAULT_LIMIT = DEFAULT_TABULATE_LIMIT
_NPROBE = 5
_TOL = 1e-6


class TabulateError(Exception):
    """The layer is not per-axis rectangular-bin max/avg pooling; the message says what was found."""


@dataclass
class _Shape:
    layout: str  # flat | 3d_cl | 3d_lc
    bins_per_channel: int  # L


def _run(fn: Callable, x: torch.Tensor) -> torch.Tensor | None:
    try:
        with torch.no_grad():
            y = fn(x)
    except Exception:
        return None
    return y if isinstance(y, torch.Tensor) and y.dtype == x.dtype else None


def _output_shape(y: torch.Tensor | None, channels: int) -> _Shape:
    if y is None:
        raise TabulateError("it fails at the example size")
    if y.dim() == 2:
        if y.shape[1] % channels:
            raise TabulateError(f"its output width {y.shape[1]} is not a multiple of C={channels}")
        return _Shape("flat", int(y.shape[1]) // channels)
    if y.dim() == 3 and y.shape[1] == channels:
        return _Shape("3d_cl", int(y.shape[2]))
    if y.dim() == 3 and y.shape[2] == channels:
        return _Shape("3d_lc", int(y.shape[1]))
    raise TabulateError(f"its output shape {list(y.shape[1:])} (per sample) is neither [F] nor [C, L] nor [L, C]")


class _Prober:
    """Runs the layer on probe batches and returns channel 0's bins in order: [P, L] or None."""

    def __init__(self, fn: Callable, channels: int, example: tuple[int, int], dtype: torch.dtype) -> None:
        self.fn, self.C, self.dtype = fn, channels, dtype
        x = torch.randn(1, channels, *example, dtype=dtype, generator=torch.Generator().manual_seed(0))
        self.shape = _output_shape(_run(fn, x), channels)
        self.channel_of = self._channel_map(example)
        # Channel-constant probes: one channel is enough unless the layer insists on C.
        self.cp = 1 if self._fits(_run(fn, torch.ones(1, 1, *example, dtype=dtype)), 1) else channels
        self.batched = self._fits(_run(fn, torch.ones(2, self.cp, *example, dtype=dtype)), self.cp, 2)
        self.calls = 0

    def _fits(self, y: torch.Tensor | None, c: int, batch: int = 1) -> bool:
        L = self.shape.bins_per_channel
        want = {"flat": (batch, c * L), "3d_cl": (batch, c, L), "3d_lc": (batch, L, c)}[self.shape.layout]
        return y is not None and tuple(y.shape) == want

    def _channel_map(self, hw: tuple[int, int]) -> np.ndarray:
        """Channel of each output feature ([C*L], flat layout order), from channel-id probes."""
        C = self.C
        ones = torch.ones(1, C, *hw, dtype=self.dtype)
        ids = torch.arange(1, C + 1, dtype=self.dtype).reshape(1, C, 1, 1).expand(1, C, *hw).contiguous()
        a, b = _run(self.fn, ones), _run(self.fn, ids)
        if a is None or b is None:
            raise TabulateError("it fails on constant inputs at the example size")
        a, b = a.reshape(-1).double().numpy(), b.reshape(-1).double().numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            ch = b / a
        if not np.all(np.isfinite(ch)) or np.abs(ch - np.rint(ch)).max() > _TOL:
            raise TabulateError("its outputs are not pooled from single channels (channel-id probe)")
        ch = np.rint(ch).astype(np.int64) - 1
        L = self.shape.bins_per_channel
        if self.shape.layout == "flat":
            counts = np.bincount(ch, minlength=C) if ch.min() >= 0 else None
            if counts is None or len(counts) != C or not np.all(counts == L):
                raise TabulateError("its outputs do not hold the same number of bins per channel")
        else:
            want = np.arange(C)[:, None] if self.shape.layout == "3d_cl" else np.arange(C)[None, :]
            if not np.array_equal(ch.reshape(C, L) if self.shape.layout == "3d_cl" else ch.reshape(L, C),
                                  np.broadcast_to(want, (C, L) if self.shape.layout == "3d_cl" else (L, C))):
                raise TabulateError(f"its {list(self.shape.__dict__.values())} output is not laid out by channel")
        return ch

    def perm(self) -> np.ndarray | None:
        """Flat layout: canonical index (c * L + k) of each output feature; None if identity."""
        if self.shape.layout != "flat":
            return None
        L = self.shape.bins_per_channel
        k = np.zeros_like(self.channel_of)
        seen = np.zeros(self.C, dtype=np.int64)
        for f, c in enumerate(self.channel_of):
            k[f], seen[c] = seen[c], seen[c] + 1
        perm = self.channel_of * L + k
        return None if np.array_equal(perm, np.arange(perm.size)) else perm

    def channel0(self, y: torch.Tensor) -> np.ndarray:
        """[P, ...] layer output -> [P, L] bins of channel 0 in order (float64)."""
        P, L = y.shape[0], self.shape.bins_per_channel
        if self.shape.layout == "3d_cl":
            y = y[:, 0, :]
        elif self.shape.layout == "3d_lc":
            y = y[:, :, 0]
        elif self.cp > 1:
            y = y[:, torch.as_tensor(np.flatnonzero(self.channel_of == 0))]
        return y.reshape(P, L).double().numpy()

    def run(self, x: torch.Tensor) -> np.ndarray | None:
        """Channel-0 bins of every probe in the batch, or None where the layer is illegal."""
        self.calls += 1
        if self.batched:
            y = _run(self.fn, x)
            return self.channel0(y) if self._fits(y, self.cp, x.shape[0]) else None
        rows = []
        for i in range(x.shape[0]):
            y = _run(self.fn, x[i: i + 1])
            if not self._fits(y, self.cp):
                return None
            rows.append(self.channel0(y))
        return np.concatenate(rows)


def _probes(S: int, dtype: torch.dtype) -> torch.Tensor:
    """[5, S]: ones, h + 1, S - h, -1, (h + 1)^2."""
    h = torch.arange(S, dtype=dtype)
    one = torch.ones(S, dtype=dtype)
    return torch.stack([one, h + 1, S - h, -one, (h + 1) ** 2])


def _sweep(pr: _Prober, axis: int, fixed: int, limit: int) -> np.ndarray:
    """[limit + 2, 5, L] probe outputs per size of ``axis`` (2: H, 3: W); NaN where illegal."""
    out = np.full((limit + 2, _NPROBE, pr.shape.bins_per_channel), np.nan)
    for S in range(1, limit + 1):
        p = _probes(S, pr.dtype)
        x = p[:, None, :, None] if axis == 2 else p[:, None, None, :]
        shape = (_NPROBE, pr.cp, S, fixed) if axis == 2 else (_NPROBE, pr.cp, fixed, S)
        o = pr.run(x.expand(*shape).contiguous())
        if o is not None:
            out[S] = o
    return out


def _near_int(a: np.ndarray) -> bool:
    return bool(np.all(np.abs(a - np.rint(a)) <= _TOL * np.maximum(1.0, np.abs(a))))


class _Axis:
    """Interpretation of one axis' sweep: extents, padding, raw avg ratio, legality."""

    def __init__(self, start, end, pad, g0, legal) -> None:
        self.start, self.end, self.pad, self.g0, self.legal = start, end, pad, g0, legal


def _interpret(out: np.ndarray, mode: str, axis_name: str) -> _Axis:
    legal = ~np.isnan(out[:, 0, 0])
    n_sizes, _, L = out.shape
    start = np.zeros((n_sizes, L), np.int64)
    end = np.zeros((n_sizes, L), np.int64)
    pad = np.zeros((n_sizes, L), bool)
    g0 = np.ones((n_sizes, L))
    for S in np.flatnonzero(legal):
        o0, o1, o2, o3, o4 = out[S]
        where = f"{axis_name}={S}"
        if mode == "max":
            full = o1 > 0
            if not (_near_int(o1) and _near_int(o2)) or np.any(o0[full] != 1) or np.any(o1 > S) or np.any(o2 > S):
                raise TabulateError(f"max probe at {where}: outputs are not values of single input positions")
            if np.any((o0[~full] != 0) | (o2[~full] != 0)) or np.any(~np.isin(o3[full], (0.0, -1.0))):
                raise TabulateError(f"max probe at {where}: not a maximum over a range plus zero padding")
            s, e = S - np.rint(o2).astype(np.int64), np.rint(o1).astype(np.int64)
            if np.any(s[full] >= e[full]):
                raise TabulateError(f"max probe at {where}: bins are not contiguous ranges")
            start[S], end[S], pad[S] = np.where(full, s, 0), np.where(full, e, 0), (o3 == 0) | ~full
        else:
            full = o0 > 0
            with np.errstate(divide="ignore", invalid="ignore"):
                m1, m2 = np.where(full, o1 / o0, 0), np.where(full, o4 / o0, 0)
                cnt = np.sqrt(np.maximum(12 * (m2 - m1 * m1) + 1, 0))
            s = (2 * m1 - 1 - cnt) / 2
            ok = (_near_int(cnt[full]) and _near_int(s[full]) and np.allclose(o3, -o0, rtol=1e-9, atol=0)
                  and np.allclose(o2[full] / o0[full], S + 1 - m1[full], rtol=1e-9))
            if not ok or np.any(out[S][:, ~full] != 0):
                raise TabulateError(f"avg probe at {where}: outputs are not means over contiguous ranges")
            s, c = np.rint(s).astype(np.int64), np.rint(cnt).astype(np.int64)
            if np.any((s[full] < 0) | (s[full] + c[full] > S)):
                raise TabulateError(f"avg probe at {where}: bins reach outside the input")
            start[S], end[S], g0[S] = np.where(full, s, 0), np.where(full, s + c, 0), np.where(full, o0, 1)
    return _Axis(start, end, pad, g0, legal)


def _pick_origin(pr: _Prober, example: tuple[int, int], limit: int) -> tuple[int, int]:
    """A legal (H0, W0) where every bin has real elements and as few bins as possible touch
    padding (ideally none): the sweeps hold one axis there, so its padding must not mask the
    other axis'. Small sizes first: each sweep costs about ``limit^2 / 2 * W0`` elements."""
    He, We = example
    cands = [(s, s) for s in range(1, min(limit, 64) + 1)] + [(He, s) for s in range(1, 65)] \
        + [(s, We) for s in range(1, 65)] + [(He, We)]
    best, best_key = (He, We), None
    for h, w in sorted(dict.fromkeys(cands), key=lambda hw: (max(hw), hw)):
        if h > limit or w > limit:
            continue
        x = torch.stack([torch.ones(h, w, dtype=pr.dtype), -torch.ones(h, w, dtype=pr.dtype)])[:, None]
        o = pr.run(x.expand(2, pr.cp, h, w).contiguous())
        if o is None or np.any(o[0] <= 0):
            continue
        score = int(np.sum((o[0] != 1) | (o[1] != -1)))
        if best_key is None or score < best_key:
            best, best_key = (h, w), score
        if score == 0:
            break
    return best


def _tables(ra: _Axis, ca: _Axis, mode: str, origin: tuple[int, int]) -> tuple[AxisTable, AxisTable]:
    H0, W0 = origin
    if mode == "max":
        ones = lambda a: np.ones(a.start.shape)  # noqa: E731
        return (AxisTable(ra.start, ra.end, ra.pad, ones(ra), ra.legal),
                AxisTable(ca.start, ca.end, ca.pad, ones(ca), ca.legal))
    # avg: divisor(H, W) = rho(H) * gamma(W); rho = count_rows(H) / g(H, W0) and
    # gamma = count_cols(W) * g(H0, W0) / g(H0, W) (exact when the divisor factors per axis).
    if not np.allclose(ra.g0[H0], ca.g0[W0], rtol=1e-9):
        raise TabulateError("avg probes disagree at the origin size: the divisor is not separable")
    rho = np.where(ra.end > ra.start, (ra.end - ra.start) / ra.g0, 1.0)
    gamma = np.where(ca.end > ca.start, (ca.end - ca.start) * ra.g0[H0] / ca.g0, 1.0)
    rho, gamma = _whole_counts(rho, gamma, ra.legal, ca.legal, H0)
    no_pad = lambda a: np.zeros(a.start.shape, bool)  # noqa: E731
    return (AxisTable(ra.start, ra.end, no_pad(ra), rho, ra.legal),
            AxisTable(ca.start, ca.end, no_pad(ca), gamma, ca.legal))


def _whole_counts(rho: np.ndarray, gamma: np.ndarray, lh: np.ndarray, lw: np.ndarray, H0: int):
    """Rescale each bin's (rho, gamma) pair, keeping rho * gamma, so both are whole counts: a real
    avg layer divides by element counts. Refuse a layer that scales or offsets its means."""
    from fractions import Fraction
    from math import lcm

    rho, gamma = rho.copy(), gamma.copy()
    for k in range(rho.shape[1]):
        ratios = np.unique(rho[lh, k] / rho[H0, k])
        fracs = [Fraction(float(v)).limit_denominator(1 << 20) for v in ratios]
        m = lcm(*[f.denominator for f in fracs]) if fracs else 1
        if any(abs(float(f) - v) > 1e-12 * max(1.0, v) for f, v in zip(fracs, ratios)) or m > (1 << 20):
            m = 0
        scale = m / rho[H0, k] if m else 0.0
        r, g = rho[:, k] * scale, gamma[:, k] / scale if scale else gamma[:, k]
        ok = m and all(np.all(np.abs(a[legal] - np.rint(a[legal])) <= 1e-9 * np.maximum(1.0, np.abs(a[legal])))
                       and np.all(a[legal] >= 1 - 1e-9) for a, legal in ((r, lh), (g, lw)))
        if not ok:
            raise TabulateError("avg probes: the divisor is not a whole count of elements "
                                "(the layer scales or offsets its means)")
        rho[:, k], gamma[:, k] = np.rint(r), np.rint(g)
    return rho, gamma


def verification_sizes(spec: TableSpec, example: tuple[int, int], count: int = 20, seed: int = 0) -> list[tuple[int, int]]:
    """(H, W) pairs for the random-data check: the example, legal and illegal pairs up to 300, a
    few large ones, and sizes past the limit."""
    rng = np.random.default_rng(seed)
    top = min(spec.limit, 300)
    pairs = [example] + [tuple(int(v) for v in rng.integers(1, top + 1, 2)) for _ in range(count)]
    lh, lw = np.flatnonzero(spec.rows.legal), np.flatnonzero(spec.cols.legal)
    if len(lh) and len(lw):
        pairs += [(int(rng.choice(lh[lh <= top])), int(rng.choice(lw[lw <= top]))) for _ in range(count)
                  if (lh <= top).any() and (lw <= top).any()]
        pairs += [(int(lh[-1]), int(lw[0])), (int(lh[0]), int(lw[-1]))]
    return list(dict.fromkeys(pairs))


def verify(fn: Callable, spec: TableSpec, example: tuple[int, int], max_elems: int = 400_000,
           ours: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
    """The tabulated op (or ``ours``, a replacement built from the tables) equals the layer
    (random data, real C, batch 2) at many (H, W); raises ``TabulateError``."""
    if ours is None:
        def ours(x: torch.Tensor) -> torch.Tensor:
            return tabulated_eager(x, spec)
    gen = torch.Generator().manual_seed(1)
    C = spec.channels
    for h, w in verification_sizes(spec, example):
        if 2 * C * h * w > max_elems:
            continue
        x = torch.randn(2, C, h, w, generator=gen)
        src = _run(fn, x)
        expect_ok = spec.size_error(h, w) is None
        src_ok = src is not None and tuple(src.shape) == spec.output_shape(2)
        if expect_ok != src_ok:
            state = "is defined" if src_ok else "fails or changes length"
            raise TabulateError(f"at {h}x{w} the layer {state}, unlike at the same H and W separately: "
                                "where it is defined depends on H and W together")
        if not src_ok:
            continue
        got = ours(x)
        if spec.mode == "max":
            x[1, 0, h // 2, w // 2] = float("nan")
            src_nan, ours_nan = _run(fn, x), ours(x)
            same = torch.equal(got, src) and src_nan is not None and \
                torch.equal(torch.isnan(src_nan), torch.isnan(ours_nan)) and \
                torch.equal(torch.nan_to_num(src_nan), torch.nan_to_num(ours_nan))
        else:
            same = torch.allclose(got, src, rtol=1e-5, atol=1e-6)
        if not same:
            raise TabulateError(f"on random data at {h}x{w} it differs from max/avg over the measured bins: "
                                "its bins depend on both H and W, are not rectangles, or depend on the data")


def tabulate(
    fn: Callable[[torch.Tensor], torch.Tensor],
    channels: int,
    example: tuple[int, int],
    limit: int = DEFAULT_LIMIT,
    source: str = "",
) -> tuple[TableSpec, dict]:
    """Probe ``fn`` at every size 1..limit of each axis and return its verified ``TableSpec`` and
    stats (probe calls, seconds); ``TabulateError`` says why the layer cannot be tabulated."""
    t0 = time.perf_counter()
    example = (int(example[0]), int(example[1]))
    if max(example) > limit:
        raise TabulateError(f"the example size {example[0]}x{example[1]} is past the probe limit {limit}")
    x64 = torch.randn(1, channels, *example, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    dtype = torch.float64 if _run(fn, x64) is not None else torch.float32
    pr = _Prober(fn, channels, example, dtype)
    origin = _pick_origin(pr, example, limit)
    rows_out = _sweep(pr, 2, origin[1], limit)
    cols_out = _sweep(pr, 3, origin[0], limit)
    if not rows_out[origin[0], 0, 0] == rows_out[origin[0], 0, 0]:
        raise TabulateError(f"it fails at the probe origin {origin[0]}x{origin[1]}")
    for name, out in (("H", rows_out), ("W", cols_out)):
        legal = np.flatnonzero(~np.isnan(out[:, 0, 0]))
        if len(legal) < 2:
            raise TabulateError(f"its output has this length only at {name}={','.join(map(str, legal))} "
                                f"of 1..{limit}: not a fixed-length pyramid")
    interpreted: list[str] = []  # verification failures (the probes fit a mode, random data did not)
    probe_errors: list[str] = []
    for mode in ("max", "avg"):
        if mode == "avg" and dtype != torch.float64:
            probe_errors.append("avg probes need float64 and the layer rejects it")
            continue
        try:
            ra, ca = _interpret(rows_out, mode, "H"), _interpret(cols_out, mode, "W")
            rows, cols = _tables(ra, ca, mode, origin)
        except TabulateError as e:
            probe_errors.append(str(e))
            continue
        spec = TableSpec(mode, channels, rows, cols, pr.shape.layout, pr.perm(), source)
        try:
            verify(fn, spec, example)
        except TabulateError as e:
            interpreted.append(str(e))
            continue
        return spec, {"calls": pr.calls, "seconds": time.perf_counter() - t0, "origin": origin}
    if interpreted:
        raise TabulateError(interpreted[0])
    raise TabulateError("its outputs are neither maxima nor means over ranges of the input (" + "; ".join(probe_errors) + ")")


def describe(spec: TableSpec) -> str:
    """'tabulated max, 21 bins/channel, exact for H, W <= 2048' for reports."""
    return f"tabulated {spec.mode}, {spec.bins_per_channel} bins/channel, exact for H, W <= {spec.limit}"


def legal_text(spec: TableSpec, up_to: int = 64) -> str:
    from .ranges import compress

    parts = []
    for axis, t in (("H", spec.rows), ("W", spec.cols)):
        bad = [s for s in t.illegal_sizes() if s <= up_to]
        parts.append(f"{axis} not in {{{compress(bad)}}}" if bad else f"any {axis}")
    return ", ".join(parts) + f" (<= {up_to} shown); undefined past {spec.limit}"


__all__: Sequence[str] = ("DEFAULT_LIMIT", "TabulateError", "describe", "legal_text", "tabulate", "verify")
