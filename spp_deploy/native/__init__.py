"""Our native C++/CUDA code (``plugins/``) from Python: find, build and load its libraries, and
call them through ctypes. Nothing here imports numpy or opens a library at import time.

- ``library``: where ``libspp_plugin.so`` / ``libspp_reference.so`` are (env vars, package, ./build).
- ``cmake``: the CMake/nvcc build of those libraries; the one-line error of a failed tool run.
- ``cabi``: what every ctypes binding shares (status codes, plugin fields, config blob round trips).
- ``reference`` / ``window_reference``: the CPU reference C ABI of each plugin (tests' oracle).
- ``emulator``: the CUDA kernels compiled for and run by the host SIMT emulator (no GPU needed);
  ``emulator_selftest``: the emulator's own self-test kernel and its expected output.
"""
