"""Helpers every layer uses: errors, install hints, lazy attributes, constants, file output, sizes,
inputs, resource limits, the Python API's argument forms, and the old module paths."""
