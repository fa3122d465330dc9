import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def cli(capsys):
    """``cli(*argv)`` runs ``spp-deploy ARGV...`` in-process and returns (exit code, stdout, stderr)
    of that command alone; arguments may be paths or numbers."""
    from spp_deploy.cli import main

    def run(*argv):
        capsys.readouterr()  # drop anything printed before this command
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run
