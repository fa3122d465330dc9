"""Install hints name the extra the way spp-deploy was installed: the local extra from a source
checkout (``pip install -e ".[plot]"``), the published package's extra otherwise."""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys
from pathlib import Path

import pytest

from spp_deploy.util import extras
from spp_deploy.util.errors import UserError

ROOT = Path(__file__).resolve().parent.parent


def _load_extras_copy(package_dir: Path):
    """spp_deploy/util/extras.py imported from ``package_dir`` (a fake install location)."""
    package_dir.mkdir(parents=True)
    shutil.copy(Path(extras.__file__), package_dir / "extras.py")
    spec = importlib.util.spec_from_file_location("_extras_copy", package_dir / "extras.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_extra_is_defined_in_pyproject():
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    section = text.split("[project.optional-dependencies]", 1)[1].split("\n[", 1)[0]
    assert set(extras.EXTRAS) == set(re.findall(r"^([A-Za-z0-9_-]+)\s*=", section, re.MULTILINE))


def test_checkout_hint_names_the_local_extra(monkeypatch):
    assert extras.source_checkout() == ROOT
    monkeypatch.chdir(ROOT)
    assert extras.pip_install_hint("plot") == 'pip install -c constraints.txt -e ".[plot]"'


def test_checkout_hint_from_another_directory_says_where(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert extras.pip_install_hint("image") == f'cd {ROOT} && pip install -c constraints.txt -e ".[image]"'


def test_installed_package_hint_names_the_published_extra(tmp_path):
    site = _load_extras_copy(tmp_path / "site-packages" / "spp_deploy" / "util")  # no pyproject.toml beside it
    assert site.source_checkout() is None
    assert site.pip_install_hint("plot") == 'pip install "spp-deploy[plot]"'


def test_another_projects_pyproject_is_not_a_checkout(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "something-else"\n')
    other = _load_extras_copy(tmp_path / "spp_deploy" / "util")
    assert other.source_checkout() is None


def test_unknown_extra_is_a_bug():
    with pytest.raises(ValueError, match="unknown extra 'plots'"):
        extras.pip_install_hint("plots")


def test_plot_without_matplotlib_names_the_plot_extra(monkeypatch):
    from spp_deploy.bench.plot import require_matplotlib

    monkeypatch.chdir(ROOT)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails
    with pytest.raises(UserError, match=re.escape('pip install -c constraints.txt -e ".[plot]"')):
        require_matplotlib()


def test_image_without_pillow_names_the_image_extra(monkeypatch, tmp_path):
    from spp_deploy.util.inputs import load_input

    image = tmp_path / "image.jpg"
    image.write_bytes(b"not read: Pillow is missing")
    monkeypatch.chdir(ROOT)
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(UserError, match=re.escape('pip install -c constraints.txt -e ".[image]"')) as e:
        load_input(str(image))
    assert ".npy" in str(e.value) and "\n" not in str(e.value)


def test_bench_backend_hints_name_extras(monkeypatch):
    from spp_deploy.bench import timed

    monkeypatch.chdir(ROOT)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    assert timed.unavailable_reason("ort-cpu").endswith('pip install -c constraints.txt -e ".[cpu]"')
    if importlib.util.find_spec("tensorrt") is None:
        assert timed.unavailable_reason("trt").endswith('pip install -c constraints.txt -e ".[tensorrt]"')
