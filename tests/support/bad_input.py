"""What the bad-input tests share: an empty working directory, the CLI run in-process, and the
one-line error check (every bad input is one line on stderr, no traceback, nothing left behind)."""

from pathlib import Path

import numpy as np
import pytest

from spp_deploy.cli import main


@pytest.fixture
def work(tmp_path, monkeypatch):
    """An empty working directory: whatever is in it after a failed command was left behind."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if a model is loaded or an export starts: patched wherever a command module
    holds the name (imported first, so that none binds the patched function for good)."""
    import spp_deploy.commands.common as common
    import spp_deploy.checked_export as deploy
    from spp_deploy.commands import command_modules

    def boom(*a, **k):
        raise AssertionError("expensive work started before the bad input was reported")

    for module in [common, deploy, *command_modules()]:
        for name in ("load_model_from_args", "export_onnx"):
            if hasattr(module, name):
                monkeypatch.setattr(module, name, boom)


def run_cli(capsys, *argv):
    capsys.readouterr()
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    assert err.count("\n") == 1 and err.startswith("spp-deploy: error: ") and "Traceback" not in err, err
    return err


def npy(path: Path, shape) -> Path:
    np.save(path, np.zeros(shape, np.float32))
    return path


def files(d: Path) -> set[str]:
    return {p.name for p in d.iterdir()}
