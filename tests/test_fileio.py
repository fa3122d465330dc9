"""spp_deploy.util.fileio on its own: temporary names within NAME_MAX, no temporary file left by a
signal that lands as it is created, outputs compared with inputs by file identity."""

import os
import signal
import tempfile

import pytest

from spp_deploy.util.errors import UserError
from spp_deploy.util.fileio import TEMP_SUFFIX, atomic_write, check_output, name_max, same_file, temp_prefix


@pytest.mark.parametrize("name", ["m.onnx", "x" * 255, "é" * 127, "a" * 240 + "é" * 7])
def test_temporary_name_fits_the_file_system(tmp_path, name):
    if len(os.fsencode(name)) > name_max(tmp_path):
        pytest.skip("name longer than this file system takes")
    prefix = temp_prefix(name, tmp_path)
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=TEMP_SUFFIX, dir=tmp_path)  # would fail with ENAMETOOLONG
    os.close(fd)
    assert len(os.fsencode(os.path.basename(tmp))) <= name_max(tmp_path)
    assert os.fsencode(name).startswith(os.fsencode(prefix)[1:-1])


def test_signal_while_the_temporary_file_is_created_leaves_nothing(tmp_path, monkeypatch):
    """Ctrl-C arriving the instant the temporary file has been made: it must still be removed."""
    real = os.open

    def open_then_ctrl_c(path, flags, *a, **k):
        fd = real(path, flags, *a, **k)
        if os.path.dirname(path) == str(tmp_path):
            os.kill(os.getpid(), signal.SIGINT)  # Python raises KeyboardInterrupt at its next chance
            for _ in range(1000):  # ... which is here, before the caller gets the descriptor
                pass
        return fd

    monkeypatch.setattr(os, "open", open_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "out", lambda tmp: tmp.write_text("x"))
    assert list(tmp_path.iterdir()) == []


def test_inputs_are_compared_by_identity(tmp_path):
    (tmp_path / "a").write_text("input")
    os.symlink("a", tmp_path / "link")
    os.link(tmp_path / "a", tmp_path / "hard")
    for name in ("a", "link", "hard", "sub/../a"):
        (tmp_path / "sub").mkdir(exist_ok=True)
        assert same_file(tmp_path / name, tmp_path / "a")
        with pytest.raises(UserError, match="is the weights"):
            check_output(tmp_path / name, force=True, inputs=[("weights", tmp_path / "a")])
    assert not same_file(tmp_path / "new", tmp_path / "a")
    assert check_output(tmp_path / "new", inputs=[("weights", tmp_path / "a")]) == tmp_path / "new"
