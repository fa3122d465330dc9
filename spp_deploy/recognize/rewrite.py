"""Find every SPP layer in a model (``scan``) and swap them for canonical ops for the length of
an export (``canonicalize``), restoring the user's model afterwards."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from enum import Enum
from typing import Iterable, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from ..util.errors import UserError
from ..sources.modelstate import keeps_model
from .config import SppConfig, declarations
from .functions import (FunctionSite, canonical_function, dispatching, find_sites, find_user_functions,
                        identify_function, recording, recording_patterns)
from .known import Found, SPPFRewrite, carry_attributes, hint_for, sppf_kernel
from .probe import identify
from .named import named_layout
from .oplevel import LEGAL_UP_TO, NAMED_RULES, OpSite, record, routing
from .table_probe import DEFAULT_LIMIT, TabulateError, describe, tabulate, verify

LOG = logging.getLogger(__name__)  # steps: a command's progress, -v, --log-file

DEFAULT_PROBE_CHANNELS = 4
NAMED_PROBE_LIMIT = 64  # sizes tabulated to tell whether a layer of named pooling calls is a named pyramid


class Plan(Enum):
    """What export does with a layer (``LayerReport.action`` is its display text)."""

    REPLACE = "replace"  # module swapped for the canonical or tabulated op
    PATCH = "patch"  # function swapped in the calling module's globals
    SPPF = "sppf"  # ultralytics SPP rewritten to SPPF
    KEEP = "keep"  # already canonical
    AS_IS = "as_is"  # exported unchanged (shape-preserving yolo blocks)
    LEAVE = "leave"  # SPP-like but not handled: export may fail on it
    ROUTE = "route"  # one pooling call sent to the size-dependent pool op while exporting

    @property
    def rewrites(self) -> bool:
        return self in (Plan.REPLACE, Plan.PATCH, Plan.SPPF, Plan.ROUTE)


@dataclass
class LayerReport:
    """One SPP layer: where, how it was recognized, what it computes, what export does with it."""

    path: str
    kind: str
    how: str  # canonical | type | structure | behaviour | declared | function | yolo
    status: str  # match | none | ambiguous | yolo
    config: SppConfig | None = None
    channels: int | None = None
    spp_input: tuple[int, int] | None = None  # H, W at the SPP input for the example
    action: str = ""
    reason: str = ""
    candidates: list[SppConfig] = field(default_factory=list)
    site: FunctionSite | None = field(default=None, repr=False)
    sppf_k: int | None = None
    table: object | None = field(default=None, repr=False)  # spp_deploy.ops.table_pyramid.TableSpec
    tabulate_stats: dict = field(default_factory=dict, repr=False)
    reordered: object | None = field(default=None, repr=False)  # named.Reordered: canonical op + layout
    plan: Plan = Plan.LEAVE
    op_site: object | None = field(default=None, repr=False)  # oplevel.OpSite: one pooling call

    @property
    def rule(self) -> str:
        """The named bin rule, 'tabulated, exact for S <= N', an op-level call's rule, or '-'."""
        if self.config is not None:
            return self.config.rule
        if self.op_site is not None:
            return self.op_site.rule
        return f"tabulated, exact for S <= {self.table.limit}" if self.table is not None else "-"

    @property
    def rewrites(self) -> bool:
        return self.plan.rewrites

    def as_dict(self) -> dict:
        d = {k: getattr(self, k) for k in ("path", "kind", "how", "status", "channels", "action", "reason")}
        d["config"] = self.config.as_dict() if self.config else None
        d["spp_input"] = list(self.spp_input) if self.spp_input else None
        d["feature_size"] = self.config.feature_count(self.channels) if self.config and self.channels else None
        d["rule"] = self.rule
        d["plan"] = self.plan.value
        if self.table is not None:
            t = self.table
            d["table"] = {"mode": t.mode, "bins_per_channel": t.bins_per_channel, "layout": t.layout, "limit": t.limit,
                          "illegal_H": t.rows.illegal_sizes(), "illegal_W": t.cols.illegal_sizes(),
                          "probe_seconds": round(self.tabulate_stats.get("seconds", 0.0), 2)}
            d["feature_size"] = int(np.prod(t.output_shape(1)))
        d["candidates"] = [c.as_dict() for c in self.candidates] if self.status == "ambiguous" else []
        if self.op_site is not None and self.op_site.spec is not None:
            ill_h, ill_w = self.op_site.illegal_sizes()
            d["pool"] = {"function": self.op_site.func, "site": self.op_site.where, "rule": self.rule,
                         "mode": self.op_site.spec.mode,
                         "arguments": self.op_site.spec.describe(), "illegal_H": ill_h, "illegal_W": ill_w,
                         "up_to": LEGAL_UP_TO}
        return d


def _record(model: nn.Module, example: torch.Tensor | None, sites: list[FunctionSite],
            user_sites: Sequence[FunctionSite] = ()):
    """Input/output shapes of every module (and SPP function calls, and the pyramid-like calls of
    user functions) on one run of ``example``."""
    ins: dict[str, tuple] = {}
    outs: dict[str, tuple] = {}
    if example is None:
        return ins, outs
    handles = []
    for path, m in model.named_modules():
        def pre(mod, args, path=path):
            if args and isinstance(args[0], torch.Tensor):
                ins.setdefault(path, tuple(args[0].shape))

        def post(mod, args, out, path=path):
            if isinstance(out, torch.Tensor):
                outs.setdefault(path, tuple(out.shape))

        handles += [m.register_forward_pre_hook(pre), m.register_forward_hook(post)]
    for s in sites:
        s.globals[s.name] = recording(s.func, s.calls)
    for s in user_sites:
        s.globals[s.name] = recording_patterns(s.func, s.calls)
    try:
        with torch.no_grad():
            model(example)
    except Exception:  # the run stops where the source breaks; the shapes seen so far still count
        pass
    finally:
        for h in handles:
            h.remove()
        for s in (*sites, *user_sites):
            s.globals[s.name] = s.func
    return ins, outs


def _is_stock(m: nn.Module) -> bool:
    return type(m).__module__.startswith("torch.") and not isinstance(m, nn.Sequential)


def _sppf_exact(spp: nn.Module, k: int, shape: tuple | None) -> bool:
    """Bit-identity check of the SPPF rewrite on the recorded (or a default) input."""
    shape = shape if shape and len(shape) == 4 else None
    if shape is None:
        c1 = next((p.shape[1] for p in spp.cv1.parameters() if p.dim() == 4), None)
        if c1 is None:
            return False
        shape = (1, c1, 19, 23)
    x = torch.randn(1, *shape[1:], generator=torch.Generator().manual_seed(0))
    try:
        with torch.no_grad():
            return bool(torch.equal(spp(x), SPPFRewrite(spp, k)(x)))
    except Exception:
        return False


@keeps_model  # scanning runs the model: a train-mode model must not learn from the probes
def scan(
    model: nn.Module,
    example: torch.Tensor | None = None,
    declared: Mapping[str, SppConfig | str] | Iterable[str] | None = None,
    sppf: bool = True,
    tabulate_limit: int = DEFAULT_LIMIT,
) -> list[LayerReport]:
    """Every SPP layer in ``model``: recognized by type, structure, behaviour, declaration or as
    a function called in forward; layers that match no named rule are probed and tabulated
    (``tabulate_limit``: largest H, W tabulated; 0 turns tabulation off). Nothing is modified."""
    declared = declarations(declared)
    mods = dict(model.named_modules())
    for p in declared:
        if p not in mods:
            raise UserError(f"declared SPP layer {p!r} is not a module of the model", option="spp_layers")
    sites = find_sites(model)
    user_sites = find_user_functions(model)
    if sites or user_sites:
        LOG.info("probing %d function call site(s) in forward", len(sites) + len(user_sites))
    ins, outs = _record(model, example, sites, user_sites)
    reports: list[LayerReport] = []
    done: list[str] = []  # layers reported as a whole: their submodules are not looked at
    for path, m in mods.items():
        if any(path.startswith(d + ".") or d == "" for d in done):
            continue
        shape, hint = ins.get(path), hint_for(m)
        seen = _known_report(path, m, hint, shape, declared, sppf)
        claimed = seen is not None
        if seen is None:
            seen, claimed = _probed_report(path, m, hint, shape, outs.get(path), example, tabulate_limit)
        if seen is not None:
            reports.append(seen)
        if claimed:
            done.append(path)
    for s in sites:
        reports.append(_function_report(s))
    for s in user_sites:
        if s.calls and not any(s.path == d or s.path.startswith(d + ".") or d == "" for d in done):
            reports += _user_function_reports(s, tabulate_limit, example.dtype)
    if example is not None and example.dim() == 4:
        LOG.info("recording pooling calls at several sizes")
        with _applied(model, reports) as root:
            reports += [_op_report(site) for site in record(root, tuple(example.shape), dtype=example.dtype)]
    return reports


def _in_shape(shape: tuple | None) -> tuple[int | None, tuple[int, int] | None]:
    """(channels, (H, W)) of a layer's recorded 4-D input, else (None, None)."""
    C = shape[1] if shape and len(shape) == 4 else None
    return C, ((shape[2], shape[3]) if C else None)


def _known_report(path: str, m: nn.Module, hint, shape: tuple | None, declared: Mapping[str, SppConfig],
                  sppf: bool) -> LayerReport | None:
    """The report of a layer known without probing: declared, ultralytics SPP/SPPF, or already
    the canonical op; None for any other."""
    C, hw = _in_shape(shape)
    if path in declared:
        return LayerReport(path, type(m).__name__, "declared", "match", declared[path], C, hw,
                           "replace with canonical op (declared)", plan=Plan.REPLACE)
    if hint is not None and hint.yolo:
        r = LayerReport(path, hint.kind, "yolo", "yolo", None, C, hw, "export as is (keeps H, W)",
                        "stride-1 pools: not binned SPP", plan=Plan.AS_IS)
        k = sppf_kernel(m) if hint.yolo == "SPP" else None
        if k and sppf and _sppf_exact(m, k, shape):
            r.action, r.sppf_k, r.plan = f"rewrite to SPPF (cascaded {k}x{k} max pools)", k, Plan.SPPF
        elif k and not sppf:
            r.reason += "; SPPF rewrite turned off"
        return r
    if hint is not None and hint.by is Found.CANONICAL:
        return LayerReport(path, hint.kind, "canonical", "match", hint.candidates[0], C, hw, "keep (canonical op)",
                           plan=Plan.KEEP)
    return None


def _probed_report(path: str, m: nn.Module, hint, shape: tuple | None, out: tuple | None,
                   example: torch.Tensor | None, tabulate_limit: int) -> tuple[LayerReport | None, bool]:
    """(report or None, whether it covers the layer as a whole) for a layer found by its type
    or its output: identified by probing, tabulated, exported through its pooling calls, or
    left as is with the reason."""
    C, hw = _in_shape(shape)
    looks_spp = C is not None and out is not None and len(out) in (2, 3) and not _is_stock(m) \
        and next(m.parameters(), None) is None
    if hint is None and not looks_spp:
        return None, False
    kind = hint.kind if hint else type(m).__name__
    how, match = _identified(path, m, C or DEFAULT_PROBE_CHANNELS, hint, kind)
    if match.status == "match":
        return LayerReport(path, kind, how, "match", match.config, C, hw, "replace with canonical op",
                           plan=Plan.REPLACE), True
    inner = _op_pools(m, shape, example.dtype) if hw is not None and match.status == "none" else None
    # Every pooling call a named rule: exact at every size through its calls, never tabulated; a
    # short table (NAMED_PROBE_LIMIT) only tells whether the whole layer is a named pyramid.
    named_inner = bool(inner) and all(s.rule in NAMED_RULES for s in inner)
    limit = min(tabulate_limit, NAMED_PROBE_LIMIT) if named_inner else tabulate_limit
    if hw is not None and limit > 0 and match.status == "none":
        tabulated = _tabulated_report(path, m, kind, C, hw, limit, match, named_inner)
        if tabulated is not None:
            return tabulated, True
    if inner:
        return _pools_report(path, kind, C, hw, inner, match.reason), True
    return LayerReport(path, kind, how, match.status, None, C, hw,
                       "left as is: no exact match" if match.status == "none"
                       else "left as is: ambiguous (declare its rule)", match.reason, match.candidates), False


def _identified(path: str, m: nn.Module, chans: int, hint, kind: str):
    """(how, match): the hint's candidates confirmed by probing, else any config by behaviour."""
    how = hint.by.value if hint else "type"
    LOG.info("probing %s (%s)", path or "the model", kind)
    match = identify(m, chans, hint.candidates) if hint else None
    if match is None or match.status != "match":
        prior = match.reason if match else ""
        match, how = identify(m, chans), "behaviour"
        if prior:
            match.reason = f"{kind} but not as expected ({prior}); " + match.reason
    return how, match


def _tabulated_report(path: str, m: nn.Module, kind: str, C: int | None, hw: tuple[int, int], limit: int, match,
                      named_inner: bool) -> LayerReport | None:
    """The layer's measured tables as a named rule in its layout, or as a tabulated op (not when
    its calls are all named rules); None, with the reason added to ``match``, otherwise."""
    LOG.info("tabulating %s up to %d pixels", path or "the model", limit)
    try:
        spec, stats = tabulate(m, C, hw, limit, source=path or type(m).__name__)
    except TabulateError as e:
        match.reason = f"{match.reason}; probing it as a black box: {e}" if match.reason else str(e)
        return None
    named = _named(m, spec, hw)
    if named is not None:
        return LayerReport(path, kind, "tabulated", "match", named.config, C, hw,
                           f"replace with canonical op ({named.describe()})", tabulate_stats=stats, reordered=named,
                           plan=Plan.REPLACE)
    if named_inner:
        return None
    return LayerReport(path, kind, "tabulated", "match", None, C, hw, f"replace with tabulated op ({describe(spec)})",
                       table=spec, tabulate_stats=stats, plan=Plan.REPLACE)


def _op_report(site: OpSite) -> LayerReport:
    """One size-dependent pooling call: routed to the size-dependent pool op, or left (why)."""
    path = f"{site.path or 'model'} -> {site.func}() at {site.where}"
    C, hw = site.in_shape[1], tuple(site.in_shape[2:])
    if site.spec is None:
        return LayerReport(path, f"{site.func} call", "op-level", "none", None, C, hw, "left as is: no rule found",
                           site.reason, op_site=site)
    return LayerReport(path, f"{site.func} call", "op-level", "match", None, C, hw,
                       f"replace call with size-dependent pool ({site.spec.describe()})", op_site=site,
                       plan=Plan.ROUTE)


def _op_pools(m: nn.Module, shape: tuple, dtype: torch.dtype) -> list[OpSite] | None:
    """The layer's size-dependent pooling calls when op-level export handles every one."""
    try:
        sites = record(m, (1, *shape[1:]), seconds=2.0, dtype=dtype)
    except Exception:
        return None
    return sites if sites and all(s.spec is not None for s in sites) else None


def _pools_report(path: str, kind: str, C: int, hw: tuple, inner: list[OpSite], reason: str) -> LayerReport:
    """A layer exported through its pooling calls (listed in their own reports)."""
    rules = ", ".join(sorted({s.rule for s in inner}))
    return LayerReport(path, kind, "op-level", "match", None, C, hw,
                       f"export its {len(inner)} pooling call(s) as size-dependent pools ({rules}; no size limit)",
                       reason, plan=Plan.AS_IS)


def _named(m: nn.Module, spec, hw: tuple[int, int]):
    """The named rule (no size limit) that the measured tables are, in the layer's layout, checked
    against the layer like the tables were; None when there is none."""
    named = named_layout(spec)
    if named is None:
        return None
    module = named.module()
    try:
        with torch.no_grad():
            verify(m, spec, hw, ours=module)
    except TabulateError:
        return None
    return named


def _fixed_length(fn, shape: tuple) -> bool:
    """The call's output keeps its shape at some other sizes (a pyramid), unlike a flatten."""
    x = torch.zeros(shape)
    want = tuple(fn(x).shape)
    h, w = shape[2], shape[3]
    for hw in ((h + 1, w), (h, w + 3), (2 * h, 2 * w + 1)):
        try:
            with torch.no_grad():
                if tuple(fn(torch.zeros(*shape[:2], *hw)).shape) == want:
                    return True
        except Exception:
            continue
    return False


class _Call(nn.Module):
    """A function of the feature map as a module (op-level recording hooks modules)."""

    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


def _user_function_reports(s: FunctionSite, limit: int, dtype: torch.dtype = torch.float32) -> list[LayerReport]:
    """A user function called in forward on a feature map: each fixed-length call pattern is
    probed and tabulated (or found to be a named rule) like a parameter-free module."""
    where = s.path or "model"
    reports = []
    for p in s.calls:
        fn = p.layer()
        C, hw = p.in_shape[1], (p.in_shape[2], p.in_shape[3])
        path = f"{where}.forward -> {s.name}()"
        try:
            if not _fixed_length(fn, p.in_shape):
                continue
        except Exception:
            continue
        kind = f"function {s.name}"
        inner = _op_pools(_Call(fn), p.in_shape, dtype)
        if inner and all(site.rule in NAMED_RULES for site in inner):  # exact through its calls: not tabulated
            reports.append(_pools_report(path, kind, C, hw, inner, ""))
            continue
        if limit <= 0:
            reports.append(_pools_report(path, kind, C, hw, inner, "") if inner else
                           LayerReport(path, kind, "function", "none", None, C, hw, "left as is: no exact match",
                                       "it follows no named rule and tabulation is off", site=s))
            continue
        try:
            spec, stats = tabulate(fn, C, hw, limit, source=f"{s.name}()")
        except TabulateError as e:
            reports.append(_pools_report(path, kind, C, hw, inner, str(e)) if inner else
                           LayerReport(path, kind, "function", "none", None, C, hw, "left as is: no exact match",
                                       f"probing it as a black box: {e}", site=s))
            continue
        named = _named(fn, spec, hw)
        if named is not None:
            module, r = named.module(), LayerReport(path, kind, "tabulated", "match", named.config, C, hw,
                                                    f"patch function during export: canonical op ({named.describe()})",
                                                    tabulate_stats=stats, site=s, reordered=named,
                                                    plan=Plan.PATCH)
        else:
            from ..ops.table_pyramid import TabulatedPyramidPool

            module, r = TabulatedPyramidPool(spec), LayerReport(path, kind, "tabulated", "match", None, C, hw,
                                                                f"patch function during export: {describe(spec)}",
                                                                table=spec, tabulate_stats=stats, site=s,
                                                                plan=Plan.PATCH)
        s.replacements.append((p, module))
        reports.append(r)
    return reports


def _function_report(s: FunctionSite) -> LayerReport:
    shape, levels = s.calls[0] if s.calls else (None, None)
    C = shape[1] if shape and len(shape) == 4 else None
    s.match = identify_function(s.func, C or 3)
    path = f"{s.path}.forward -> {s.name}()"
    if s.match.status != "match":
        return LayerReport(path, f"function {s.name}", "function", s.match.status, None, C, None,
                           "left as is: no exact match", s.match.reason, site=s)
    cfg = s.match.config
    if levels:
        cfg = SppConfig(levels, cfg.mode, cfg.rule, cfg.order)
    return LayerReport(path, "sppnet-pytorch spatial_pyramid_pool" if s.name == "spatial_pyramid_pool"
                       else f"function {s.name}", "function", "match", cfg, C,
                       (shape[2], shape[3]) if C else None, "patch function during export", site=s,
                       plan=Plan.PATCH)


@contextlib.contextmanager
def canonicalize(
    model: nn.Module,
    example: torch.Tensor | None = None,
    declared: Mapping[str, SppConfig | str] | Iterable[str] | None = None,
    sppf: bool = True,
    reports: list[LayerReport] | None = None,
    tabulate_limit: int = DEFAULT_LIMIT,
) -> Iterator[tuple[nn.Module, list[LayerReport]]]:
    """Within the block, the model's SPP layers are canonical ops (and SPP is SPPF), and while
    exporting its size-dependent pooling calls are size-dependent pool ops; afterwards every
    module and function is back. Yields (model to trace, reports)."""
    if reports is None:
        reports = scan(model, example, declared, sppf, tabulate_limit)
    with _applied(model, reports) as root, routing(root, [r.op_site for r in reports if r.plan is Plan.ROUTE]):
        yield root, reports


@contextlib.contextmanager
def _applied(model: nn.Module, reports: Sequence[LayerReport]) -> Iterator[nn.Module]:
    """The module and function rewrites of ``reports`` applied for the block; yields the root."""
    undo = []
    root = model
    try:
        for r in reports:
            if not r.rewrites or r.plan is Plan.ROUTE:
                continue
            if r.site is not None:
                g, name, f = r.site.globals, r.site.name, r.site.func
                if g.get(name) is not f:  # a site with several call patterns: patched once
                    continue
                g[name] = dispatching(f, r.site.replacements) if r.site.replacements \
                    else canonical_function(f, r.site.match.config)
                undo.append(lambda g=g, name=name, f=f: g.__setitem__(name, f))
                continue
            old = model.get_submodule(r.path)
            if r.table is not None:
                from ..ops.table_pyramid import TabulatedPyramidPool

                new = carry_attributes(old, TabulatedPyramidPool(r.table))
            elif r.reordered is not None:
                new = carry_attributes(old, r.reordered.module())
            else:
                new = carry_attributes(old, SPPFRewrite(old, r.sppf_k) if r.sppf_k else r.config.module())
            if r.path == "":
                root = new
                continue
            parent_path, _, name = r.path.rpartition(".")
            parent = model.get_submodule(parent_path)
            setattr(parent, name, new)
            undo.append(lambda p=parent, n=name, o=old: setattr(p, n, o))
        yield root
    finally:
        for u in reversed(undo):
            u()
