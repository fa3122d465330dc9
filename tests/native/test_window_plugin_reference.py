"""The window-SPP plugin's C++ side (plugins/windowSpatialPyramidPoolPlugin) against the Python op:
the projection twin (windowSpp.h) against projection.py on many boxes, the CPU reference against
``WindowSpatialPyramidPool`` bit for bit, the createPlugin field parser, and the plugin's name,
version and namespace against the exporter's constants. No GPU, no TensorRT."""

from __future__ import annotations

import math
import re
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from native_checks import assert_fields_rejected, bits_equal
from spp_deploy.native import cabi, window_reference as wref
from spp_deploy import contract as G
from spp_deploy.ops.projection import ZF5, WindowProjection
from spp_deploy.ops.window_pyramid import EXACT_LEVELS, WindowSpatialPyramidPool, project_windows
from window_oracle import random_maps, random_windows

SRC = Path(__file__).resolve().parents[2] / "plugins" / "windowSpatialPyramidPoolPlugin"
PROJECTIONS = [ZF5, WindowProjection.identity(), WindowProjection.from_layers([(5, 2, 2), (3, 2, 1)], offset=2.0),
               WindowProjection(3.0, -2.5, 0.75)]
LEVEL_SETS = [(1, 2, 3, 6), (6, 3, 2, 1), (1,), (4, 2, 1), (3,), (16, 8, 4), (2, 6), (6, 4), (8, 3, 3)]
F32_SPECIALS = np.array([np.nan, np.inf, -np.inf], dtype=np.float64)


def _eager(x: np.ndarray, win: np.ndarray, levels, proj: WindowProjection) -> np.ndarray:
    return WindowSpatialPyramidPool(levels, projection=proj)(torch.from_numpy(x), torch.from_numpy(win)).numpy()


# ---- the projection twin ------------------------------------------------------------------------------


def _boundary_boxes(proj: WindowProjection, H: int, W: int) -> np.ndarray:
    """Pixel coordinates on and one ulp either side of every rounding boundary of the projection
    ((v - offset0 +- offset) / stride +- 0.5 an integer), over the map and beyond it."""
    S, o0, o = proj.stride, proj.offset0, proj.offset
    k = np.arange(-3, max(H, W) + 4, dtype=np.float64)
    edges = np.concatenate([o0 - o + S * (k - 0.5), o0 + o + S * (k + 0.5) - S])
    vals = np.concatenate([edges, np.nextafter(edges, np.inf), np.nextafter(edges, -np.inf)])
    return vals


def test_projection_twin_exhaustive_grid(reflib):
    """Every pair of pixel coordinates on a quarter-pixel grid (and every rounding boundary +- 1 ulp)
    as (x1, x2) and (y1, y2): the C++ cells equal project_windows' (floor, ceil, collapse, clamp)."""
    for proj in PROJECTIONS:
        H, W = 7, 11
        grid = np.arange(-3 * proj.stride - 30, (W + 3) * proj.stride + 30, 0.25)
        vals = np.unique(np.concatenate([grid, _boundary_boxes(proj, H, W)]))
        vals = vals[np.linspace(0, vals.size - 1, min(vals.size, 700)).astype(int)]  # <= 490k pairs
        lo, hi = np.meshgrid(vals, vals, indexing="ij")
        lo, hi = lo.ravel(), hi.ravel()
        R = lo.size
        win = np.stack([np.zeros(R), lo, hi[::-1].copy(), hi, lo[::-1].copy()], 1)
        cells, valid = wref.reference_project(win, 1, H, W, proj.as_list(), reflib)
        expected = project_windows(torch.from_numpy(win), H, W, proj).numpy()
        assert valid.all()
        bad = np.argwhere((cells != expected).any(1))
        assert not bad.size, (proj, win[bad[0, 0]], cells[bad[0, 0]], expected[bad[0, 0]])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), H=st.integers(1, 80), W=st.integers(1, 80), S=st.integers(1, 4),
       p=st.sampled_from(range(len(PROJECTIONS))))
def test_projection_twin_random_boxes(reflib, seed, H, W, S, p):
    """Random windows of every kind (tiny, inverted, huge, outside the map, x2 < x1), and magnitudes
    up to 1e300: same cells as projection.py."""
    rng = np.random.default_rng(seed)
    proj = PROJECTIONS[p]
    win = random_windows(rng, 2000, S, H, W, stride=proj.stride)
    scale = 10.0 ** rng.integers(0, 300, (200, 1))
    win[:200, 1:] *= scale * rng.choice([-1, 1], (200, 4))
    cells, valid = wref.reference_project(win, S, H, W, proj.as_list(), reflib)
    assert valid.all()
    assert np.array_equal(cells, project_windows(torch.from_numpy(win), H, W, proj).numpy())


def test_projection_refuses_what_eager_refuses(reflib):
    """Rows the eager op raises on (non-finite, fractional or out-of-range map index) are invalid,
    each on its own; the eager op raises ValueError for each."""
    x = np.ones((2, 1, 5, 5), dtype=np.float32)
    good = [1.0, 20.0, 20.0, 60.0, 60.0]
    bad_rows = [[2.0, *good[1:]], [-1.0, *good[1:]], [0.5, *good[1:]], [np.nan, *good[1:]], [np.inf, *good[1:]],
                [0.0, np.nan, 20, 60, 60], [0.0, 20, -np.inf, 60, 60], [0.0, 20, 20, np.inf, 60],
                [0.0, 20, 20, 60, np.nan]]
    for row in bad_rows:
        win = np.array([good, row, good], dtype=np.float64)
        _, valid = wref.reference_project(win, 2, 5, 5, ZF5.as_list(), reflib)
        assert valid.tolist() == [True, False, True], row
        with pytest.raises(ValueError, match="window"):
            _eager(x, win, (1, 2), ZF5)
        out = wref.reference_window_pyramid(x, win, (1, 2), ZF5.as_list(), reflib)
        assert np.isnan(out[1]).all() and not np.isnan(out[[0, 2]]).any()
        assert bits_equal(out[[0, 2]], _eager(x, win[[0, 2]], (1, 2), ZF5))


# ---- the CPU reference against the eager op -------------------------------------------------------------


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(S=st.integers(1, 3), C=st.integers(1, 4), H=st.integers(1, 30), W=st.integers(1, 30),
       R=st.sampled_from([0, 1, 2, 17, 64]), levels=st.sampled_from(LEVEL_SETS), specials=st.booleans(),
       p=st.sampled_from(range(len(PROJECTIONS))), fp16=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_reference_matches_eager(reflib, S, C, H, W, R, levels, specials, p, fp16, seed):
    rng = np.random.default_rng(seed)
    proj = PROJECTIONS[p]
    x = random_maps(rng, S, C, H, W, specials)
    if fp16:
        x = (x * 100).astype(np.float16)
    if specials:
        x.ravel()[rng.integers(0, x.size, max(1, x.size // 50))] = np.inf
    win = random_windows(rng, R, S, H, W, stride=proj.stride)
    got = wref.reference_window_pyramid(x, win, levels, proj.as_list(), reflib)
    assert got.shape == (R, C * sum(n * n for n in levels)) and got.dtype == x.dtype
    assert bits_equal(got, _eager(x, win, levels, proj))


def test_reference_float32_windows_widen_exactly(reflib):
    """The plugin takes fp32 (or fp16) windows and widens them to float64: the eager op on the same
    fp32 tensor (which it widens too) gives the same bits."""
    rng = np.random.default_rng(1)
    x = random_maps(rng, 2, 3, 17, 23, True)
    win32 = random_windows(rng, 300, 2, 17, 23).astype(np.float32)
    got = wref.reference_window_pyramid(x, win32.astype(np.float64), (1, 2, 3, 6), ZF5.as_list(), reflib)
    eager = WindowSpatialPyramidPool((1, 2, 3, 6))(torch.from_numpy(x), torch.from_numpy(win32)).numpy()
    assert bits_equal(got, eager)


def test_reference_empty_and_degenerate(reflib):
    x = random_maps(np.random.default_rng(2), 1, 2, 1, 1, False)
    assert wref.reference_window_pyramid(x, np.zeros((0, 5)), (1, 2), ZF5.as_list(), reflib).shape == (0, 10)
    win = np.array([[0, -1e9, -1e9, 1e9, 1e9], [0, 5, 5, 4, 4]], dtype=np.float64)  # 1 x 1 map: every bin the cell
    got = wref.reference_window_pyramid(x, win, (1, 2), ZF5.as_list(), reflib)
    assert bits_equal(got, _eager(x, win, (1, 2), ZF5))
    v = np.maximum(x[0, :, 0, 0], 0)
    assert (got == np.concatenate([v, v.repeat(4)])[None]).all()


# ---- the createPlugin field parser -------------------------------------------------------------------------

FIELD_FLOAT32, FIELD_FLOAT64 = 1, 2


def _fields(levels=(1, 2, 3, 6), projection=(16.0, 21.0, 6.5)):
    return [("levels", cabi.FIELD_INT32, struct.pack(f"<{len(levels)}i", *levels), len(levels)),
            ("projection", FIELD_FLOAT32, struct.pack(f"<{len(projection)}f", *projection), len(projection))]


def test_supported_levels_are_the_python_ones(reflib):
    assert tuple(n for n in range(-2, 70) if wref.window_level_supported(n, reflib)) == EXACT_LEVELS
    src = (SRC / "windowSpp.h").read_text()
    listed = re.search(r"kWINDOW_LEVELS\[\] = \{([^}]*)\}", src).group(1)
    assert tuple(int(v) for v in listed.split(",")) == EXACT_LEVELS


def test_config_good(reflib):
    assert wref.parse_window_fields(_fields(), reflib) == ((1, 2, 3, 6), (16.0, 21.0, 6.5))
    f = _fields(levels=(16, 8, 4))
    f[0] = ("levels", cabi.FIELD_INT64, struct.pack("<3q", 16, 8, 4), 3)
    f[1] = ("projection", FIELD_FLOAT64, struct.pack("<3d", 0.1, -3.3, 0.0), 3)
    f += [("plugin_version", cabi.FIELD_CHAR, b"1\0", 2), ("plugin_namespace", cabi.FIELD_CHAR, b"\0", 1)]
    assert wref.parse_window_fields(f, reflib) == ((16, 8, 4), (0.1, -3.3, 0.0))
    # float32 attributes (what ONNX FLOATS hold) widen exactly
    assert wref.parse_window_fields(_fields(projection=(0.1, 21, 6.5)), reflib)[1][0] == float(np.float32(0.1))


@pytest.mark.parametrize("mutate,msg", [
    (lambda f: f.pop(0), "missing required field 'levels'"),
    (lambda f: f.pop(1), "missing required field 'projection'"),
    (lambda f: f.append(f[0]), "duplicate field 'levels'"),
    (lambda f: f.__setitem__(0, ("levels", cabi.FIELD_INT32, b"", 0)), "must not be empty"),
    (lambda f: f.__setitem__(0, ("levels", cabi.FIELD_INT32, struct.pack("<2i", 6, 5), 2)), "level 5 is not supported"),
    (lambda f: f.__setitem__(0, ("levels", cabi.FIELD_INT32, struct.pack("<1i", 0), 1)), "level 0 is not supported"),
    (lambda f: f.__setitem__(0, ("levels", cabi.FIELD_INT32, struct.pack("<17i", *[1] * 17), 17)), "too many"),
    (lambda f: f.__setitem__(0, ("levels", FIELD_FLOAT32, struct.pack("<1f", 1), 1)), "kINT32"),
    (lambda f: f.__setitem__(1, ("projection", FIELD_FLOAT32, struct.pack("<2f", 16, 21), 2)), "3 values"),
    (lambda f: f.__setitem__(1, ("projection", cabi.FIELD_INT32, struct.pack("<3i", 16, 21, 6), 3)), "kFLOAT32"),
    (lambda f: f.__setitem__(1, ("projection", FIELD_FLOAT32, struct.pack("<3f", 0, 21, 6.5), 3)),
     "stride must be > 0"),
    (lambda f: f.__setitem__(1, ("projection", FIELD_FLOAT32, struct.pack("<3f", -16, 21, 6.5), 3)), "stride must"),
    (lambda f: f.__setitem__(1, ("projection", FIELD_FLOAT32, struct.pack("<3f", 16, math.inf, 6.5), 3)),
     "offset0 must be a finite"),
    (lambda f: f.__setitem__(1, ("projection", FIELD_FLOAT32, struct.pack("<3f", 16, 21, math.nan), 3)),
     "offset must be a finite"),
])
def test_config_rejects(reflib, mutate, msg):
    assert_fields_rejected(lambda f: wref.parse_window_fields(f, reflib), _fields(), mutate, msg)


def test_config_serialization(reflib):
    blob = wref.serialize_window_config((6, 3, 2, 1), (16.0, 21.0, 6.5), reflib)
    assert wref.deserialize_window_config(blob, reflib) == ((6, 3, 2, 1), (16.0, 21.0, 6.5))
    field = [("window_spp_config", cabi.FIELD_UNKNOWN, blob, len(blob))]
    assert wref.parse_window_fields(field, reflib) == ((6, 3, 2, 1), (16.0, 21.0, 6.5))
    with pytest.raises(ValueError, match="cannot be combined"):
        wref.parse_window_fields(field + _fields()[:1], reflib)
    for bad, msg in [(blob[:-1], "length"), (blob[:5], "too short"), (b"SPPC" + blob[4:], "bad magic"),
                     (blob[:4] + b"\2" + blob[5:], "version"), (blob[:12] + b"\7" + blob[13:], "checksum")]:
        with pytest.raises(ValueError, match=msg):
            wref.deserialize_window_config(bad, reflib)
    with pytest.raises(ValueError, match="invalid"):
        wref.serialize_window_config((5,), (16.0, 21.0, 6.5), reflib)


# ---- name / version / namespace: what the exporter writes into plugin-mode nodes ------------------------------


def test_plugin_identity_matches_exporter():
    header = (SRC / "windowSpatialPyramidPoolPlugin.h").read_text()
    consts = dict(re.findall(r'constexpr char const\* (kWINDOW_SPP_PLUGIN_\w+) = "([^"]*)";', header))
    assert consts == {"kWINDOW_SPP_PLUGIN_NAME": G.WINDOW_OP, "kWINDOW_SPP_PLUGIN_VERSION": G.WINDOW_PLUGIN_VERSION,
                      "kWINDOW_SPP_PLUGIN_NAMESPACE": G.WINDOW_PLUGIN_NAMESPACE}
