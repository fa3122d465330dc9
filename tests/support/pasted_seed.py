"""Seed 000 (sppnet-pytorch) as a user has it in their own file: ``spatial_pyramid_pool`` and
``SPP_NET.forward`` exactly as ``spp_deploy.sources.seeds`` holds them (the one copy of the seed's code),
with ``SPP_NET``'s layers made small so its export stays fast. Loaded from the file, the function
and the class are the user's, not ``spp_deploy.sources.seeds``'s: export has to find them there."""

from __future__ import annotations

import inspect

HEADER = """\
import math

import torch
from torch import nn


"""

SMALL_SPP_NET = '''

class SPP_NET(nn.Module):
    """Seed 000's network with small layers: conv5 to 64 channels, fc 64 * 21 -> 64 -> 10."""

    def __init__(self, ndf={ndf}):
        super(SPP_NET, self).__init__()
        self.output_num = [4, 2, 1]
        self.conv5 = nn.Conv2d(ndf * 8, 64, 4, 1, 0, bias=False)
        self.fc1 = nn.Linear(64 * 21, 64)
        self.fc2 = nn.Linear(64, 10)

'''


def seed000_file(ndf: int) -> str:
    """The file's text; ``SPP_NET()`` takes ``ndf * 8`` input channels."""
    from spp_deploy.sources import seeds  # imports torch: only when a file is written

    return (HEADER + inspect.getsource(seeds.spatial_pyramid_pool) + SMALL_SPP_NET.format(ndf=ndf)
            + inspect.getsource(seeds.SPP_NET.forward))
