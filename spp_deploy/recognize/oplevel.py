"""Op-level recognition: every pooling *call* whose kernel, stride, padding or output size
follows the input's H or W, wherever it sits (PSPNet/UPerNet pyramid pooling modules, temporal
and strip pyramids, functions), with or without parameters around it.

A ``torch.overrides.TorchFunctionMode`` sees each ``max_pool2d`` / ``avg_pool2d`` /
``adaptive_*_pool2d`` call (``F`` functions and the ``nn`` modules alike). Recording runs the model
at a few sizes and keys each call by its site (module path, the user's file:line, and its
occurrence in that forward); ``fit`` turns the arguments seen into a ``sizepool.PoolSpec`` (each
integer a ``Lin`` of the pooled axis' size). While exporting, ``routing`` sends each recorded call
to the size-dependent custom op instead, so the graph computes the bins from the runtime H, W.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from ..ops.size_dependent_pool import PoolSpec
from .poolfit import LEGAL_UP_TO, NAMED_RULES, Call, fit, is_legal, pair, rule_name  # noqa: F401 (LEGAL_UP_TO, NAMED_RULES: re-exported)

# function -> (name, its parameters after the input, their defaults)
_WINDOW = ("kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")
_SIGS: dict[Callable, tuple[str, tuple, tuple]] = {
    F.max_pool2d: ("max_pool2d", _WINDOW, (None, None, 0, 1, False, False)),
    torch.max_pool2d: ("max_pool2d", _WINDOW[:-1], (None, (), 0, 1, False)),
    F.avg_pool2d: ("avg_pool2d", ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad",
                                  "divisor_override"), (None, None, 0, False, True, None)),
    F.adaptive_max_pool2d: ("adaptive_max_pool2d", ("output_size", "return_indices"), (None, False)),
    F.adaptive_avg_pool2d: ("adaptive_avg_pool2d", ("output_size",), (None,)),
}
# frames that are not the call site: torch, this module, and export/nearest.py's mode (which passes calls on)
_SKIP_DIRS = (os.path.dirname(torch.__file__) + os.sep, os.path.abspath(__file__),
              os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "export", "nearest.py"))
PROBE_SECONDS = 8.0  # recording stops adding sizes after this (at least MIN_PROBES run)
MIN_PROBES = 4


def _bind(func: Callable, args: tuple, kwargs: dict) -> tuple[str, dict] | None:
    name, params, defaults = _SIGS[func]
    bound = dict(zip(params, defaults))
    bound.update(zip(params, args[1:]))
    bound.update({k: v for k, v in kwargs.items() if k in bound})
    return name, bound


def _user_frame():
    """The innermost frame outside torch and this module: the call site (or None)."""
    f = sys._getframe(1)
    while f is not None and f.f_code.co_filename.startswith(_SKIP_DIRS):
        f = f.f_back
    return f


class _Tracker:
    """Module path stack and per-forward occurrence counts, from hooks on every module."""

    def __init__(self, model: nn.Module) -> None:
        self.stack: list[str] = []
        self.counts: dict[tuple, int] = {}
        self.scopes: list[dict] = []  # globals of the call sites' code (where int() may read sizes)
        self.handles = []
        for path, m in model.named_modules():
            self.handles += [m.register_forward_pre_hook(lambda mod, a, p=path, root=m is model: self._enter(p, root)),
                             m.register_forward_hook(lambda mod, a, o: self._leave(), always_call=True)]

    def _enter(self, path: str, root: bool) -> None:
        if root:
            self.stack.clear()
            self.counts.clear()
        self.stack.append(path)

    def _leave(self) -> None:
        if self.stack:
            self.stack.pop()

    def site(self) -> tuple[str, str, int, int]:
        path = self.stack[-1] if self.stack else ""
        f = _user_frame()
        file, line = (f.f_code.co_filename, f.f_lineno) if f is not None else ("?", 0)
        if f is not None and not any(g is f.f_globals for g in self.scopes):
            self.scopes.append(f.f_globals)
        n = self.counts.get((path, file, line), 0)
        self.counts[(path, file, line)] = n + 1
        return path, file, line, n

    def close(self) -> None:
        for h in self.handles:
            h.remove()


class _PoolMode(TorchFunctionMode):
    """Calls ``on_pool(func, name, bound args, args, kwargs)`` for each pooling call on a 4-D map."""

    def __init__(self, on_pool: Callable) -> None:
        super().__init__()
        self.on_pool = on_pool

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _SIGS and args and isinstance(args[0], torch.Tensor) and args[0].dim() == 4:
            name, bound = _bind(func, args, kwargs)
            return self.on_pool(func, name, bound, args, kwargs)
        return func(*args, **kwargs)


@dataclass
class OpSite:
    """One size-dependent pooling call site and what export does with it."""

    path: str  # module whose forward makes the call ("" for the model)
    file: str
    line: int
    index: int  # occurrence of this (path, file:line) in one forward
    func: str
    spec: PoolSpec | None = None
    reason: str = ""
    rule: str = "-"  # the named rule its bins are, or "window"
    in_shape: tuple = ()
    calls: list = field(default_factory=list, repr=False)
    scope: dict = field(default_factory=dict, repr=False)  # the calling code's globals

    @property
    def key(self) -> tuple:
        return (self.path, self.file, self.line, self.index)

    @property
    def where(self) -> str:
        return f"{os.path.basename(self.file)}:{self.line}" + (f" #{self.index + 1}" if self.index else "")

    def illegal_sizes(self) -> tuple[list[int], list[int]]:
        """Sizes 1..LEGAL_UP_TO of the pool's input H and W where PyTorch rejects the call."""
        S = np.arange(1, LEGAL_UP_TO + 1)
        return [[int(s) for s in S[~is_legal(self.spec, axis, S)]] for axis in (self.spec.rows, self.spec.cols)]


def legal_text(site: OpSite) -> str:
    """'H not in {1-5}, any W' at the call's input (all sizes up to LEGAL_UP_TO checked)."""
    from .ranges import compress

    bad_h, bad_w = site.illegal_sizes()
    parts = [f"{axis} not in {{{compress(bad)}}}" if bad else f"any {axis}" for axis, bad in (("H", bad_h), ("W", bad_w))]
    return ", ".join(parts) + f" (checked to {LEGAL_UP_TO}; no size limit)"


def _may_follow_size(calls: list[Call]) -> bool:
    """An adaptive pool (other than a global one) or a call whose arguments changed."""
    b0 = calls[0].bound
    if calls[0].name.startswith("adaptive") and pair(b0["output_size"]) != (1, 1):
        return True
    return any(c.bound != b0 or c.name != calls[0].name for c in calls)


def probe_shapes(example_shape: Sequence[int]) -> list[tuple[int, int, int, int]]:
    """Model input sizes to record at: the example's, nearby odd offsets, and scaled ones."""
    _, C, H, W = (int(s) for s in example_shape)
    hw = [(H, W), (H + 1, W + 2), (max(H // 2, 1) + 1, max(W // 2, 1) + 2), (H * 3 // 2 + 1, W * 3 // 2 + 3),
          (H * 3 // 4 + 2, W * 5 // 4 + 1), (H + 5, W + 3), (max(H // 3, 1) + 3, max(W // 3, 1) + 1),
          (H + 11, W + 7), (H * 2 + 3, W * 2 + 1), (H * 5 // 4 + 3, W * 3 // 4 + 5)]
    seen, out = set(), []
    for h, w in hw:
        if (h, w) not in seen:
            seen.add((h, w))
            out.append((1, C, h, w))
    return out[:1] + out  # the example's size twice, on other data: arguments that follow the data show


def record(model: nn.Module, example_shape: Sequence[int], seconds: float = PROBE_SECONDS,
           dtype: torch.dtype = torch.float32) -> list[OpSite]:
    """Run ``model`` at the probe sizes (random ``dtype`` data) and fit every size-dependent pooling call site."""
    calls: dict[tuple, list[Call]] = {}
    shapes_in: dict[tuple, tuple] = {}
    scopes: dict[tuple, dict] = {}
    runs, t0 = 0, time.perf_counter()
    tracker = _Tracker(model)
    g = torch.Generator().manual_seed(0)
    try:
        for shape in probe_shapes(example_shape):
            if runs >= MIN_PROBES and time.perf_counter() - t0 > seconds:
                break
            if runs >= 3 and not any(_may_follow_size(cs) for cs in calls.values()):
                break  # every call's arguments the same at three runs, two sizes: nothing to route
            seen: dict[tuple, Call] = {}

            def on_pool(func, name, bound, args, kwargs, seen=seen):
                key = tracker.site()
                scopes.setdefault(key, tracker.scopes[-1] if tracker.scopes else {})
                x = args[0]
                seen[key] = Call(int(x.shape[2]), int(x.shape[3]), name, bound)
                shapes_in.setdefault(key, tuple(x.shape))
                return func(*args, **kwargs)

            try:
                with torch.no_grad(), _PoolMode(on_pool):
                    model(torch.randn(shape, generator=g).to(dtype))
            except Exception:  # the model is undefined at this size: nothing from it counts
                continue
            runs += 1
            for k, c in seen.items():
                calls.setdefault(k, []).append(c)
    finally:
        tracker.close()
    sites = []
    for key, cs in calls.items():
        spec, why = fit(cs) if len(cs) == runs else (None, "not called at every probed size")
        if spec is None and not why:
            continue
        site = OpSite(*key, func=cs[0].name, spec=spec, reason=why, in_shape=shapes_in[key], calls=cs,
                      scope=scopes.get(key, {}))
        if spec is not None:
            site.rule = rule_name(spec)
        sites.append(site)
    return sites


@contextlib.contextmanager
def routing(model: nn.Module, sites: Sequence[OpSite]) -> Iterator[None]:
    """While exporting inside the block, each recorded call site is the size-dependent custom op."""
    specs = {s.key: s.spec for s in sites if s.spec is not None}
    if not specs:
        yield
        return
    tracker = _Tracker(model)

    def on_pool(func, name, bound, args, kwargs):
        key = tracker.site()
        spec = specs.get(key)
        if spec is None or spec.func != name or not torch.compiler.is_exporting():
            return func(*args, **kwargs)
        return torch.ops.spp_deploy.size_dependent_pool(args[0], spec.key)

    try:
        with _PoolMode(on_pool), _symbolic_int(model, [s.scope for s in sites if s.spec is not None]):
            yield
    finally:
        tracker.close()


def _int(v=0, *args):
    """``int`` that keeps a traced size symbolic (``int(x.size(2))``, ``int(math.ceil(h / n))``)
    instead of fixing it to the example's value."""
    if isinstance(v, torch.SymInt):
        return v
    if isinstance(v, torch.SymFloat):
        return torch.sym_int(v)
    return builtins.int(v, *args)


@contextlib.contextmanager
def _symbolic_int(model: nn.Module, scopes: Sequence[dict] = ()) -> Iterator[None]:
    """While exporting, ``int`` in the modules that define the model's forwards (and in the code
    that makes the routed calls) is ``_int``: sizes the user's code passes through ``int()`` to a
    routed pooling call stay dynamic."""
    touched = []
    forwards = [getattr(getattr(type(m), "forward", None), "__globals__", None) for m in model.modules()]
    for g in [*forwards, *scopes]:
        if not g or "int" in g or any(g is t for t in touched) or g.get("__name__", "").startswith("torch"):
            continue
        g["int"] = _int
        touched.append(g)
    try:
        yield
    finally:
        for g in touched:
            g.pop("int", None)
