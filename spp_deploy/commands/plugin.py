"""``spp-deploy plugin build|info``: build the TensorRT plugin (CMake) and show where it is."""

from __future__ import annotations


def run_build(args) -> int:
    from ..native.cmake import build_plugins

    lib = build_plugins(args.build_dir, tensorrt_root=args.tensorrt_root, cuda_arch=args.cuda_arch,
                        static_registration=args.static_registration)
    print(f"built {lib}")
    print(f"use it with: export SPP_DEPLOY_PLUGIN_LIB={lib}")
    print(usage_elsewhere(lib, args.static_registration))
    return 0


def usage_elsewhere(lib, static_registration: bool) -> str:
    """How trtexec and Polygraphy get the plugin: the library registers its creators through
    getCreators, which only IPluginRegistry::loadLibrary calls (trtexec --dynamicPlugins; its
    --staticPlugins and Polygraphy's --plugins only dlopen it, which registers nothing unless the
    library was built with static registration); and the parser must not see the SPP function bodies."""
    polygraphy = (f"polygraphy run m.onnx --trt --plugins {lib}" if static_registration else
                  "polygraphy: rebuild with --static-registration (its --plugins only dlopens the library)")
    return ("trtexec / Polygraphy: export with --spp-impl plugin --strip-functions first (the parser must not see "
            f"the SPP function bodies), then trtexec --onnx=m.onnx --dynamicPlugins={lib}; {polygraphy}")


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
    b.add_argument("--static-registration", action="store_true",
                   help="also register the creators when the library is dlopen'ed (Polygraphy --plugins); "
                        "links libnvinfer")
    b.set_defaults(func=run_build)
    psub.add_parser("info", help="where the plugin and reference libraries are").set_defaults(func=run_info)
