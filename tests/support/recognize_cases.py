"""Helpers shared by the recognition tests: the one report a scan must give, and a layer no rule
knows by type (identified by behaviour, or declared)."""

from torch import nn

import source_layers as ref


def only(reports):
    """The single report of a scan that must find exactly one layer."""
    (r,) = reports
    return r


class Unregistered(nn.Module):
    """Nobody registered this one: a hand-written ceil_pad avg pyramid."""

    def forward(self, x):
        return ref.seed000_spatial_pyramid_pool(x, [3, 1], mode="avg")
