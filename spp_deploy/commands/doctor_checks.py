"""Facts for ``spp-deploy doctor``, beside its command; each probe is isolated so one broken
package cannot hide the rest."""

from __future__ import annotations

import importlib
import platform


def _version(mod: str) -> str:
    try:
        return importlib.import_module(mod).__version__
    except ModuleNotFoundError:
        return "not installed"
    except Exception as e:
        return f"broken ({type(e).__name__}: {e})"


def collect() -> list[tuple[str, str]]:
    from ..runtime.trt.common import INSTALL_HINT

    rows = [("python", platform.python_version()), ("spp-deploy", _version("spp_deploy"))]
    rows.append(("torch", _version("torch")))
    rows.append(("onnx", _version("onnx")))
    ort = _version("onnxruntime")
    rows.append(("onnxruntime", ort))
    if not ort.startswith(("not", "broken")):
        import onnxruntime

        rows.append(("  providers", ", ".join(onnxruntime.get_available_providers())))
    trt = _version("tensorrt")
    rows.append(("tensorrt", trt if not trt.startswith("not") else f"not installed ({INSTALL_HINT})"))
    if not trt.startswith(("not", "broken")):
        import tensorrt

        flag = getattr(getattr(tensorrt, "OnnxParserFlag", None), "ENABLE_PLUGIN_OVERRIDE", None)
        rows.append(("  parser plugin override", "yes" if flag is not None else "no (function bodies are stripped)"))
    rows.append(("tritonclient", _tritonclient_status()))
    try:
        import torch

        rows.append(("CUDA (torch build)", torch.version.cuda or "none (CPU build)"))
        if torch.cuda.is_available():
            i = torch.cuda.current_device()
            cc = ".".join(map(str, torch.cuda.get_device_capability(i)))
            rows.append(("GPU", f"{torch.cuda.get_device_name(i)} (compute capability {cc}, {torch.cuda.device_count()} device(s))"))
        else:
            from ..runtime.trt.cuda import driver_gpu_identity

            drv = driver_gpu_identity()
            rows.append(("GPU", f"{drv['name']} (compute capability {drv['compute_capability']}; via the CUDA "
                                "driver, not visible to torch)" if drv else "none visible to torch or the CUDA driver"))
    except Exception as e:
        rows.append(("GPU", f"unknown ({type(e).__name__}: {e})"))
    rows.append(("SPP plugin library", _plugin_status()))
    return rows


def _tritonclient_status() -> str:
    """Version, and which clients can be used (``triton`` needs the package; bench's backends its clients)."""
    import importlib.metadata
    import importlib.util

    try:
        version = importlib.metadata.version("tritonclient")
    except importlib.metadata.PackageNotFoundError:
        from ..util.extras import pip_install_hint

        return f"not installed (spp-deploy triton and bench's triton-* backends need it: {pip_install_hint('triton')})"
    clients = [c for c, dep in (("http", "geventhttpclient"), ("grpc", "grpc")) if importlib.util.find_spec(dep)]
    return f"{version} (clients: {', '.join(clients) or 'none'})"


def _plugin_status() -> str:
    try:
        from ..native.library import find_plugin_library, load_plugin_library
    except Exception as e:
        return f"spp_deploy.native.library unavailable ({type(e).__name__})"
    try:
        path = find_plugin_library()
    except Exception as e:
        return f"misconfigured: {e}"
    if path is None:
        return "not built (spp-deploy plugin build; or set SPP_DEPLOY_PLUGIN_LIB)"
    try:
        load_plugin_library(path)
    except Exception as e:
        return f"{path}: built but not loadable ({e})"
    return f"{path}: loadable"
