"""SPP *functions* called inside ``forward`` (seed 000/002 ``spatial_pyramid_pool``).

Replacing modules cannot reach them, so, like mmdeploy's function rewriters, we swap the
function object in the calling module's globals for the export and put it back afterwards.
"""

from __future__ import annotations

import inspect
import types
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from ..ops import bins as _bins
from .config import SppConfig
from .probe import Match, identify

SEED_PARAMS = ("previous_conv", "num_sample", "previous_conv_size", "out_pool_size")
PROBE_LEVELS = ((4, 2, 1), (3, 2, 1))


@dataclass
class FunctionSite:
    """One SPP function reachable from a module's forward: where it lives and what it computes."""

    path: str  # module path whose forward calls it
    name: str  # global name in that forward's module
    globals: dict = field(repr=False)
    func: Callable
    match: Match | None = None
    calls: list = field(default_factory=list)  # (input shape, levels) or CallPatterns seen on the example run
    replacements: list = field(default_factory=list)  # (CallPattern, module): what export calls instead


def _looks_like_seed(f) -> bool:
    if not isinstance(f, types.FunctionType):
        return False
    params = [p for p in inspect.signature(f).parameters]
    return tuple(params[-4:]) == SEED_PARAMS or f.__name__ == "spatial_pyramid_pool"


def _forward_functions(model: nn.Module, keep: Callable[[object], bool], root_name: bool) -> list[FunctionSite]:
    """Functions ``keep`` accepts that a module's ``forward`` names, one site per (globals, name)."""
    sites: dict[tuple[int, str], FunctionSite] = {}
    for path, m in model.named_modules():
        fwd = getattr(type(m), "forward", None)
        if not isinstance(fwd, types.FunctionType):
            continue
        g = fwd.__globals__
        for name in fwd.__code__.co_names:
            f = g.get(name)
            if keep(f) and (id(g), name) not in sites:
                sites[(id(g), name)] = FunctionSite(path or (type(m).__name__ if root_name else ""), name, g, f)
    return list(sites.values())


def find_sites(model: nn.Module) -> list[FunctionSite]:
    """Seed-like functions that a module's ``forward`` names, one site per (globals, name)."""
    return _forward_functions(model, _looks_like_seed, root_name=True)


def _call(f: Callable, x, levels):
    n_extra = len(inspect.signature(f).parameters) - 4  # the seed text has a stray ``self``
    return f(*([None] * n_extra), x, x.shape[0], [int(x.shape[2]), int(x.shape[3])], list(levels))


def identify_function(f: Callable, channels: int = 3) -> Match:
    """The (rule, mode, order) ``f`` computes, the same for every probed level list."""
    found = None
    for levels in PROBE_LEVELS:
        cands = [SppConfig(levels, m, r, o) for r in _bins.RULES for m in _bins.MODES for o in _bins.ORDERS]
        match = identify(lambda x: _call(f, x, levels), channels, cands)
        if match.status != "match":
            return match
        key = (match.config.mode, match.config.rule, match.config.order)
        if found not in (None, key):
            return Match("ambiguous", reason="the rule differs between level lists")
        found = key
    return match


def canonical_function(f: Callable, cfg: SppConfig) -> Callable:
    """A drop-in for ``f`` that calls the canonical op with the levels passed at call time.

    It returns [B, F]: the seed's ``view(num_sample, -1)`` only runs (and only makes sense)
    for num_sample == B, so the export stays valid for dynamic batch.
    """
    sig = inspect.signature(f)

    def spp_canonical(*args, **kwargs):
        a = sig.bind(*args, **kwargs).arguments
        x, levels = a[SEED_PARAMS[0]], a[SEED_PARAMS[3]]
        return SppConfig(tuple(levels), cfg.mode, cfg.rule, cfg.order).module()(x).reshape(x.shape[0], -1)

    spp_canonical.__wrapped__ = f
    return spp_canonical


def recording(f: Callable, calls: list) -> Callable:
    """``f`` that also records (input shape, levels) of each call."""
    sig = inspect.signature(f)

    def rec(*args, **kwargs):
        a = sig.bind(*args, **kwargs).arguments
        calls.append((tuple(a[SEED_PARAMS[0]].shape), tuple(a[SEED_PARAMS[3]])))
        return f(*args, **kwargs)

    return rec


# ---- any other user function that a forward calls on a feature map (the general path) ----

_LIBRARIES = {"torch", "numpy", "spp_deploy", "builtins", "math", "typing", "functools", "itertools"}


def _user_function(f) -> bool:
    """A plain Python function from the user's code (not a library's, not the seed's)."""
    if not isinstance(f, types.FunctionType) or _looks_like_seed(f):
        return False
    return (f.__module__ or "").split(".")[0] not in _LIBRARIES


def find_user_functions(model: nn.Module) -> list[FunctionSite]:
    """User functions that a module's ``forward`` names (path "" for the root module); which of
    them are SPP is decided by what their calls return (``CallPattern``)."""
    return _forward_functions(model, _user_function, root_name=False)


@dataclass
class CallPattern:
    """One way a function was called: which argument is the feature map, which arguments are
    its height or width (computed by the caller: ``int(x.size(2))``, ``x.shape[2:]``), and the
    rest, constants. ``probe(h, w)`` builds the same call for another size."""

    func: Callable
    args: tuple
    kwargs: dict
    x_at: int | str
    roles: dict  # argument position/name -> "H" | "W" | tuple of roles (a sequence), for sizes
    in_shape: tuple

    def key(self) -> str:
        """The constant arguments, as a comparable string."""
        return self._constants(self.args, self.kwargs)

    def _constants(self, args: tuple, kwargs: dict) -> str:
        # Only constant slots are read: the size slots hold SymInts while exporting, and
        # touching them (repr, comparisons) would specialise H and W.
        slots = [*range(len(args)), *sorted(kwargs)]
        return repr([(k, args[k] if isinstance(k, int) else kwargs[k]) for k in slots
                     if k != self.x_at and k not in self.roles])

    def layer(self) -> Callable:
        """The call as a function of the feature map alone (size arguments follow its H, W)."""
        def call(x):
            h, w = int(x.shape[2]), int(x.shape[3])
            args, kwargs = list(self.args), dict(self.kwargs)
            for k, role in self.roles.items():
                value = _resize(self.args[k] if isinstance(k, int) else self.kwargs[k], role, h, w)
                if isinstance(k, int):
                    args[k] = value
                else:
                    kwargs[k] = value
            if isinstance(self.x_at, int):
                args[self.x_at] = x
            else:
                kwargs[self.x_at] = x
            return self.func(*args, **kwargs)

        return call

    def matches(self, args: tuple, kwargs: dict) -> bool:
        """A call (at export time) with the same constants and the feature map in the same place."""
        if len(args) != len(self.args) or set(kwargs) != set(self.kwargs):
            return False
        x = args[self.x_at] if isinstance(self.x_at, int) else kwargs[self.x_at]
        return isinstance(x, torch.Tensor) and x.dim() == 4 and self._constants(args, kwargs) == self.key()


def _role(v, h: int, w: int, seen: list):
    """'H' / 'W' when v is the feature map's height / width (the first such int is H when H == W),
    a tuple of roles for a sequence holding them, else None (a constant)."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        if v == h and (v != w or "H" not in seen):
            seen.append("H")
            return "H"
        if v == w:
            seen.append("W")
            return "W"
        return None
    if isinstance(v, (list, tuple)) and v and all(isinstance(e, int) and not isinstance(e, bool) for e in v):
        inner: list = []
        roles = tuple(_role(e, h, w, inner) for e in v)
        return roles if any(roles) else None
    return None


def _resize(v, role, h: int, w: int):
    if role == "H":
        return h
    if role == "W":
        return w
    out = [_resize(e, r, h, w) if r else e for e, r in zip(v, role)]
    return type(v)(out) if not isinstance(v, torch.Size) else torch.Size(out)


def call_pattern(func: Callable, args: tuple, kwargs: dict, out) -> CallPattern | None:
    """The pattern of one call when it maps a [B, C, H, W] tensor to a 2-D or 3-D tensor."""
    if not isinstance(out, torch.Tensor) or out.dim() not in (2, 3):
        return None
    slots = list(enumerate(args)) + list(kwargs.items())
    x_at = next((k for k, v in slots if isinstance(v, torch.Tensor) and v.dim() == 4), None)
    if x_at is None:
        return None
    x = args[x_at] if isinstance(x_at, int) else kwargs[x_at]
    h, w = int(x.shape[2]), int(x.shape[3])
    seen: list = []
    roles = {}
    for k, v in slots:
        if k != x_at and (r := _role(v, h, w, seen)):
            roles[k] = r
    return CallPattern(func, tuple(args), dict(kwargs), x_at, roles, tuple(x.shape))


def recording_patterns(f: Callable, patterns: list) -> Callable:
    """``f`` that also records the pattern of each call that looks like a pyramid."""
    def rec(*args, **kwargs):
        out = f(*args, **kwargs)
        p = call_pattern(f, args, kwargs, out)
        if p is not None and all(q.key() != p.key() for q in patterns):
            patterns.append(p)
        return out

    return rec


def dispatching(f: Callable, replacements: list[tuple[CallPattern, nn.Module]]) -> Callable:
    """A drop-in for ``f`` that sends calls matching a recorded pattern to its replacement
    module (canonical or tabulated op) and any other call to ``f`` itself."""
    def dispatch(*args, **kwargs):
        for pattern, module in replacements:
            if pattern.matches(args, kwargs):
                return module(args[pattern.x_at] if isinstance(pattern.x_at, int) else kwargs[pattern.x_at])
        return f(*args, **kwargs)

    dispatch.__wrapped__ = f
    return dispatch
