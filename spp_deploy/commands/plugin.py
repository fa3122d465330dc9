"""``spp-deploy plugin build|info``: build the TensorRT plugin (CMake) and show where it is."""

from __future__ import annotations


def run_build(args) -> int:
    from ..native.cmake import build_plugins

    lib = build_plugins(args.build_dir, tensorrt_root=args.tensorrt_root, cuda_arch=args.cuda_arch)
    print(f"built {lib}")
    print(f"use it with: export SPP_DEPLOY_PLUGIN_LIB={lib}   (or trtexec --staticPlugins={lib})")
    return 0


def run_info(args) -> int:
    from ..contract import PLUGIN_NAME, PLUGIN_VERSION
    from ..native.library import find_plugin_library, find_reference_library

    print(f"plugin {PLUGIN_NAME} version {PLUGIN_VERSION}")
    print(f"  TensorRT plugin library: {find_plugin_library() or 'not built (spp-deploy plugin build)'}")
    print(f"  CPU reference library:   {find_reference_library() or 'not built'}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("plugin", help="build or locate the TensorRT SpatialPyramidPool plugin")
    psub = p.add_subparsers(dest="plugin_command", required=True, metavar="ACTION")
    b = psub.add_parser("build", help="CMake build of plugins/ (needs nvcc and TensorRT)")
    b.add_argument("--build-dir", default="build")
    b.add_argument("--tensorrt-root", help="TensorRT install (include/ and lib/); default: search")
    b.add_argument("--cuda-arch", help="CMAKE_CUDA_ARCHITECTURES, e.g. '75;86;90'")
    b.set_defaults(func=run_build)
    psub.add_parser("info", help="where the plugin and reference libraries are").set_defaults(func=run_info)
