"""The C++ SPP reference (plugins/, the plugin's bin math and config parser) against the Python op.

Builds libspp_reference.so once per session (CMake, or g++ directly when CMake is missing): no GPU,
no TensorRT. Max must be bit-identical to ``spp_eager`` (NaN in the same places), avg within 1e-6
relative, illegal sizes rejected by both.
"""

from __future__ import annotations

import ast
import ctypes
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from native_checks import assert_fields_rejected
import oracle as reference
from pyramid_cases import pyramid_case
from spp_deploy.ops import bins as B
from spp_deploy.contract import RULE_CODES
from spp_deploy.native import cabi, cmake as native_build, library as native_lib, reference as cref
from spp_deploy.util.errors import UserError
from spp_deploy.ops.pyramid import spp_eager

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "plugins" / "spatialPyramidPoolPlugin"


def _eager(x: np.ndarray, levels, mode, rule, order, dtype=torch.float32) -> np.ndarray:
    return spp_eager(torch.from_numpy(x).to(dtype), list(levels), mode, rule, order).numpy()


def _check(reflib, x, levels, mode, rule, order):
    H, W = x.shape[2:]
    if not B.is_defined(rule, H, W, levels):
        with pytest.raises(ValueError):
            _eager(x, levels, mode, rule, order)
        with pytest.raises(ValueError, match="not defined"):
            cref.reference_pyramid(x, levels, mode, rule, order, library=reflib)
        return False
    ref = cref.reference_pyramid(x, levels, mode, rule, order, library=reflib)
    assert ref.dtype == np.float32 and ref.shape == (x.shape[0], B.feature_count(x.shape[1], levels))
    if mode == "max":
        eager = _eager(x, levels, mode, rule, order)
        assert np.array_equal(ref, eager, equal_nan=True), (rule, order, levels, x.shape)
    else:
        # The reference accumulates in double and rounds once to float32: within 1e-6 relative of
        # the float64 op (plus float64's worst-case summation error, for means near 0) and, as a
        # sanity check, within the float32 op's worst-case summation error.
        e64 = _eager(x, levels, mode, rule, order, torch.float64)
        x64 = x.astype(np.float64)
        reference.assert_within(ref, e64, 1e-6 * np.abs(e64) + reference.avg_error_bound(x64, levels, rule, order))
        e32 = _eager(x, levels, mode, rule, order)
        reference.assert_within(ref, e32, reference.avg_error_bound(x, levels, rule, order))
    return True


LEVELS = st.lists(st.integers(1, 8), min_size=1, max_size=4) | st.lists(
    st.sampled_from([1, 2, 3, 4, 6, 8, 12, 14, 16]), min_size=1, max_size=3
)


@pytest.mark.parametrize("mode", B.MODES)
@pytest.mark.parametrize("rule", B.RULES)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(**pyramid_case(300, LEVELS))
def test_reference_matches_eager(reflib, rule, mode, h, w, b, c, levels, order, seed):
    x = np.random.default_rng(seed).standard_normal((b, c, h, w)).astype(np.float32)
    _check(reflib, x, levels, mode, rule, order)


@pytest.mark.parametrize("mode", B.MODES)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n=st.sampled_from([1, 2, 4, 8]),
    k=st.integers(1, 37),
    hr=st.integers(0, 36),
    wr=st.integers(0, 36),
    order=st.sampled_from(B.ORDERS),
    seed=st.integers(0, 2**32 - 1),
)
def test_floor_kernel_legal_sizes(reflib, mode, n, k, hr, wr, order, seed):
    """floor_kernel is rarely legal at random sizes: build legal ones (H // (H//n) == n, n*k <= W < (n+1)*k)."""
    h = n * k + min(hr, k - 1, n - 1) if n > 1 else k
    w = n * k + min(wr, k - 1)
    x = np.random.default_rng(seed).standard_normal((1, 2, h, w)).astype(np.float32)
    assert _check(reflib, x, [n], mode, "floor_kernel", order)


@pytest.mark.parametrize("rule", B.RULES)
def test_axis_bins_match_python(reflib, rule):
    """sppBins.h is the twin of bins.py: same edges, spans and validity (exhaustive on small sizes)."""
    for n in list(range(1, 17)) + [24, 32, 48, 64]:
        sizes = range(1, 301) if n <= 16 else range(1, 700, 7)
        for s in sizes:
            heights = (s,) if rule != "floor_kernel" else (s, max(1, s // 2), s + 3 * n)
            for hgt in heights:
                ps = B.axis_bins(rule, s, n, hgt)
                cs, ce, csp, cv = cref.reference_axis_bins(rule, s, n, hgt, library=reflib)
                assert cv == bool(ps.valid), (rule, s, n, hgt)
                if cv:
                    assert np.array_equal(cs, np.broadcast_to(ps.start, (n,)))
                    assert np.array_equal(ce, np.broadcast_to(ps.end, (n,)))
                    assert np.array_equal(csp, np.broadcast_to(ps.span, (n,)))


def test_rounded_float32_ties(reflib):
    """Large n where float32 rounding of i*L matters (the spec: n = 12, 14 tie cases), S up to 2048."""
    for n in (12, 14, 24, 64):
        for s in range(n, 2049):
            ps = B.axis_bins("rounded", s, n)
            cs, ce, _, cv = cref.reference_axis_bins("rounded", s, n, library=reflib)
            assert cv and np.array_equal(cs, ps.start) and np.array_equal(ce, ps.end), (s, n)


def test_nan_propagation(reflib):
    rng = np.random.default_rng(0)
    for rule, (h, w), levels in [("adaptive", (37, 29), [4, 2, 1]), ("ceil_pad", (13, 30), [4, 3, 1]),
                                 ("rounded", (25, 33), [6, 3, 2]), ("floor_kernel", (16, 17), [4])]:
        x = rng.standard_normal((2, 3, h, w)).astype(np.float32)
        x[0, 1, rng.integers(0, h), rng.integers(0, w)] = np.nan
        x[1, 2, h - 1, w - 1] = np.nan
        x[1, 0, 0, :] = -np.inf
        for order in B.ORDERS:
            ref = cref.reference_pyramid(x, levels, "max", rule, order, library=reflib)
            eager = _eager(x, levels, "max", rule, order)
            assert np.isnan(ref).any()
            assert np.array_equal(np.isnan(ref), np.isnan(eager))
            assert np.array_equal(ref, eager, equal_nan=True)
        # The 1x1 level (when present) sees every pixel: NaN for the poisoned planes only.
        if 1 in levels:
            ref = cref.reference_pyramid(x, levels, "max", rule, "channel_major", library=reflib)
            off = 3 * sum(n * n for n in levels[: levels.index(1)])
            assert np.isnan(ref[0, off + 1]) and np.isnan(ref[1, off + 2]) and not np.isnan(ref[0, off + 0])


@pytest.mark.parametrize("rule", B.RULES)
def test_fp16_input(reflib, rule):
    rng = np.random.default_rng(1)
    levels = [4, 2, 1] if rule != "floor_kernel" else [2]
    h, w = (33, 47) if rule != "floor_kernel" else (33, 35)
    x16 = (rng.standard_normal((2, 3, h, w)) * 100).astype(np.float16)
    x16[0, 0, 3, 3] = np.nan
    x32 = x16.astype(np.float32)
    for order in B.ORDERS:
        ref = cref.reference_pyramid(x16, levels, "max", rule, order, library=reflib)
        assert ref.dtype == np.float16
        assert np.array_equal(ref.astype(np.float32), _eager(x32, levels, "max", rule, order), equal_nan=True)
        ref = cref.reference_pyramid(x16, levels, "avg", rule, order, library=reflib)
        e = _eager(x32, levels, "avg", rule, order, torch.float64).astype(np.float16)
        np.testing.assert_allclose(ref.astype(np.float32), e.astype(np.float32), rtol=2e-3, atol=1e-3)


@pytest.mark.parametrize(
    "rule,h,w,levels",
    [("ceil_pad", 5, 20, [4]), ("ceil_pad", 20, 9, [4, 2]), ("ceil_pad", 1, 1, [2]),
     ("floor_kernel", 3, 8, [4]), ("floor_kernel", 16, 40, [4]), ("floor_kernel", 7, 4, [4]),
     ("rounded", 5, 20, [6]), ("rounded", 20, 3, [4, 1])],
)
def test_illegal_sizes_raise(reflib, rule, h, w, levels):
    x = np.zeros((1, 2, h, w), dtype=np.float32)
    assert not B.is_defined(rule, h, w, levels)
    for mode in B.MODES:
        _check(reflib, x, levels, mode, rule, "channel_major")
    lib = cref.open_reference_library(reflib)
    lv = (ctypes.c_int32 * len(levels))(*levels)
    out = np.full(1000, 7.0, dtype=np.float32)
    rc = lib.spp_reference_forward_f32(x.ctypes.data, 1, 2, h, w, lv, len(levels), 0, RULE_CODES[rule], 0,
                                       out.ctypes.data, out.size)
    assert rc == cabi.STATUS_ILLEGAL_SIZE and (out == 7.0).all()  # nothing written


def test_bad_arguments(reflib):
    lib = cref.open_reference_library(reflib)
    x = np.zeros((1, 1, 8, 8), dtype=np.float32)
    out = np.zeros(4, dtype=np.float32)
    lv = (ctypes.c_int32 * 2)(2, 1)
    assert lib.spp_reference_forward_f32(x.ctypes.data, 1, 1, 8, 8, lv, 2, 0, 0, 0, out.ctypes.data, 4) == cabi.STATUS_BAD_ARGUMENT
    assert lib.spp_reference_forward_f32(x.ctypes.data, 1, 1, 8, 8, lv, 2, 5, 0, 0, out.ctypes.data, 4) == cabi.STATUS_BAD_CONFIG
    with pytest.raises(ValueError, match=r"levels must be in 1\.\.64, got \[0\]"):
        cref.reference_pyramid(x, [0], "max", "adaptive", "channel_major", library=reflib)
    with pytest.raises(ValueError, match="unknown SPP mode 'median'"):
        cref.reference_pyramid(x, [2], "median", "adaptive", "channel_major", library=reflib)
    with pytest.raises(TypeError, match="float32 and float16 input, got float64"):
        cref.reference_pyramid(x.astype(np.float64), [2], "max", "adaptive", "channel_major", library=reflib)


# ---- config parsing (the plugin's createPlugin path) --------------------------------------------


def _ints(vals, fmt="i"):
    return struct.pack(f"<{len(vals)}{fmt}", *vals)


def _good_fields(levels=(4, 2, 1), mode=b"max\0", rule=b"adaptive\0", order=b"channel_major\0"):
    return [
        ("levels", cabi.FIELD_INT32, _ints(levels), len(levels)),
        ("mode", cabi.FIELD_CHAR, mode, len(mode)),
        ("bins", cabi.FIELD_CHAR, rule, len(rule)),
        ("order", cabi.FIELD_CHAR, order, len(order)),
    ]


def test_config_good(reflib):
    assert cref.parse_config_fields(_good_fields(), reflib) == ((4, 2, 1), "max", "adaptive", "channel_major")
    # Without the trailing NUL, with int64 levels, extra unknown fields ignored.
    f = _good_fields(mode=b"avg", rule=b"rounded", order=b"bin_major")
    f[0] = ("levels", cabi.FIELD_INT64, _ints([6, 3, 2, 1], "q"), 4)
    f.append(("plugin_version", cabi.FIELD_CHAR, b"1\0", 2))
    assert cref.parse_config_fields(f, reflib) == ((6, 3, 2, 1), "avg", "rounded", "bin_major")
    lv = tuple(range(1, 17))
    assert cref.parse_config_fields(_good_fields(levels=lv), reflib)[0] == lv
    assert cref.parse_config_fields(_good_fields(levels=(64,)), reflib)[0] == (64,)


@pytest.mark.parametrize(
    "mutate,msg",
    [
        (lambda f: f.__setitem__(0, ("levels", cabi.FIELD_INT32, b"", 0)), "empty"),
        (lambda f: f.__setitem__(0, ("levels", cabi.FIELD_INT32, _ints([4, 0, 1]), 3)), "out of range"),
        (lambda f: f.__setitem__(0, ("levels", cabi.FIELD_INT32, _ints([4, -2]), 2)), "out of range"),
        (lambda f: f.__setitem__(0, ("levels", cabi.FIELD_INT32, _ints([65]), 1)), "out of range"),
        (lambda f: f.__setitem__(0, ("levels", cabi.FIELD_INT32, _ints(range(1, 18)), 17)), "too many"),
        (lambda f: f.__setitem__(0, ("levels", cabi.FIELD_CHAR, b"4,2,1\0", 6)), "kINT32"),
        (lambda f: f.__setitem__(0, ("levels", 1, struct.pack("<3f", 4, 2, 1), 3)), "kINT32"),
        (lambda f: f.__setitem__(1, ("mode", cabi.FIELD_CHAR, b"median\0", 7)), "unknown mode"),
        (lambda f: f.__setitem__(1, ("mode", cabi.FIELD_CHAR, b"Max\0", 4)), "unknown mode"),
        (lambda f: f.__setitem__(1, ("mode", cabi.FIELD_CHAR, b"max\0x", 5)), "after its terminating NUL"),
        (lambda f: f.__setitem__(2, ("bins", cabi.FIELD_CHAR, b"ceil\0", 5)), "unknown bins"),
        (lambda f: f.__setitem__(2, ("bins", cabi.FIELD_INT32, _ints([0]), 1)), "string"),
        (lambda f: f.__setitem__(3, ("order", cabi.FIELD_CHAR, b"\0", 1)), "unknown order"),
        (lambda f: f.pop(3), "missing required field 'order'"),
        (lambda f: f.pop(0), "missing required field 'levels'"),
        (lambda f: f.append(f[1]), "duplicate"),
    ],
)
def test_config_rejects(reflib, mutate, msg):
    assert_fields_rejected(lambda f: cref.parse_config_fields(f, reflib), _good_fields(), mutate, msg)


def test_config_serialization(reflib):
    blob = cref.serialize_config([8, 4, 2, 1], "avg", "ceil_pad", "bin_major", reflib)
    assert cref.deserialize_config(blob, reflib) == ((8, 4, 2, 1), "avg", "ceil_pad", "bin_major")
    # The runtime path: createPlugin given the single blob field.
    assert cref.parse_config_fields([("spp_config", cabi.FIELD_UNKNOWN, blob, len(blob))], reflib)[0] == (8, 4, 2, 1)
    bad_cases = [blob[:-1], blob[:5], b"", blob + b"\0", b"XXXX" + blob[4:]]
    for i in range(len(blob)):  # every single-byte tamper is detected
        t = bytearray(blob)
        t[i] ^= 0x5A
        bad_cases.append(bytes(t))
    ver = bytearray(blob)
    ver[4] = 2
    bad_cases.append(bytes(ver))
    for bad in bad_cases:
        with pytest.raises(ValueError):
            cref.deserialize_config(bad, reflib)
    with pytest.raises(ValueError, match="cannot be combined"):
        cref.parse_config_fields(_good_fields() + [("spp_config", cabi.FIELD_UNKNOWN, blob, len(blob))], reflib)


# ---- CUDA kernel compile check, Python API -------------------------------------------------------


def _nvcc():
    return native_build.find_nvcc()


@pytest.mark.skipif(_nvcc() is None, reason="nvcc not available")
def test_kernel_compiles_with_nvcc(tmp_path):
    cmd = [_nvcc(), "-std=c++17", "-c", "-arch=sm_75", "-Xcompiler=-fPIC", "-Werror=all-warnings",
           str(SRC / "spatialPyramidPoolKernel.cu"), "-o", str(tmp_path / "k.o")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "k.o").stat().st_size > 0


def test_native_modules_import_nothing_heavy():
    top = set()
    for f in (ROOT / "spp_deploy" / "native").glob("*.py"):
        for node in ast.parse(f.read_text()).body:
            if isinstance(node, ast.Import):
                top |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                top.add(node.module.split(".")[0])
    assert top <= {"__future__", "ctypes", "os", "re", "shutil", "subprocess", "pathlib", "typing"}, top


@pytest.mark.parametrize("cmake,nvcc,message", [
    (False, True, "cmake not found on PATH"),
    (True, False, "nvcc not found"),
    (True, True, "TensorRT headers (NvInfer.h) not found under {root}"),
])
def test_build_plugins_reports_missing_tensorrt(tmp_path, build_tools, cmake, nvcc, message):
    build_tools(cmake, nvcc)
    root = tmp_path / "no-trt"
    with pytest.raises(UserError) as ei:
        native_build.build_plugins(tmp_path / "build", tensorrt_root=root)
    msg = str(ei.value)
    assert "\n" not in msg and message.format(root=root) in msg
    assert not (tmp_path / "build").exists()  # refused before configuring anything


def test_find_and_load_errors(tmp_path, monkeypatch):
    monkeypatch.setenv(native_lib.PLUGIN_LIB_ENV, str(tmp_path / "missing.so"))
    with pytest.raises(UserError, match=f"{native_lib.PLUGIN_LIB_ENV}=.*missing.so does not name an existing file"):
        native_lib.find_plugin_library()
    monkeypatch.delenv(native_lib.PLUGIN_LIB_ENV)
    with pytest.raises(UserError, match="plugin library .*nope.so does not exist"):
        native_lib.load_plugin_library(tmp_path / "nope.so")
    monkeypatch.setenv(native_lib.REFERENCE_LIB_ENV, str(tmp_path / "x.so"))
    with pytest.raises(UserError, match=f"{native_lib.REFERENCE_LIB_ENV}=.*x.so does not name an existing file"):
        native_lib.find_reference_library()


def test_reference_found_via_env(reflib, monkeypatch):
    monkeypatch.setenv(native_lib.REFERENCE_LIB_ENV, str(reflib))
    assert native_lib.find_reference_library() == reflib
    # load_plugin_library is a plain global dlopen: any shared library loads.
    monkeypatch.setenv(native_lib.PLUGIN_LIB_ENV, str(reflib))
    assert native_lib.load_plugin_library() is not None


def test_adaptive_nesting_used_by_kernel():
    """The CUDA kernel derives every adaptive max level m | n_finest from the finest level's bins.

    That is exact iff coarse bin i is the union of fine bins i*r .. i*r+r-1 (r = n/m), and those
    fine bins leave no gap (end_j >= start_{j+1}); check it on every size 1..300 and n up to 64.
    """
    for n in range(2, 65):
        for m in [d for d in range(1, n) if n % d == 0]:
            r = n // m
            for s in range(1, 301):
                fine, coarse = B.axis_bins("adaptive", s, n), B.axis_bins("adaptive", s, m)
                assert np.array_equal(coarse.start, fine.start[::r])
                assert np.array_equal(coarse.end, fine.end[r - 1 :: r])
                assert (fine.end[:-1] >= fine.start[1:]).all()
    assert B.get_rule("adaptive").nests and not any(B.get_rule(r).nests for r in B.RULES if r != "adaptive")


def _trt_include_dirs():
    import os

    return [d for d in os.environ.get("SPP_DEPLOY_TRT_INCLUDE", "").split(os.pathsep) if d]


@pytest.mark.skipif(not _trt_include_dirs() or _nvcc() is None,
                    reason="set SPP_DEPLOY_TRT_INCLUDE=<TensorRT include dir>[:...] (and have nvcc) to compile-check the plugin")
@pytest.mark.parametrize("inc", _trt_include_dirs() or ["-"])
def test_plugin_compiles_against_tensorrt_headers(inc):
    proc = subprocess.run(["bash", str(ROOT / "plugins" / "tools" / "compile_check.sh"), inc],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "FAIL" not in proc.stdout
