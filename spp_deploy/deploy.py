"""Deprecated name of ``spp_deploy.checked_export`` (which says what it does: a file checked
against PyTorch). Importing it gives that very module, so patching either name patches both."""

import sys
import warnings

from . import checked_export

warnings.warn("spp_deploy.deploy is deprecated: use spp_deploy.checked_export", DeprecationWarning, stacklevel=2)
sys.modules[__name__] = checked_export
