"""``spp-deploy zoo``: list the built-in seed models."""

from __future__ import annotations


def run(args) -> int:
    from ..sources.zoo import DETECTORS, ZOO

    for e in ZOO.values():
        print(f"zoo:{e.name:<20} input {'x'.join(map(str, e.input_shape)):<14} {e.source}; sizes: {e.input_rule}")
    for d in DETECTORS.values():
        print(f"zoo:{d.name:<20} image + windows  {d.source}; export-detector, detect")
    return 0


def register(sub) -> None:
    sub.add_parser("zoo", help="list the built-in seed models").set_defaults(func=run)
