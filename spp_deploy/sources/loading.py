"""Load the user's model: ``zoo:NAME``, ``module.path:factory`` or ``path/file.py:factory``,
optional kwargs and a weights file read with ``torch.load(weights_only=True)``."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import re
import sys
import warnings
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from ..util.errors import UserError, first_line


def parse_kwargs(text: str | None) -> dict[str, Any]:
    """Factory keyword arguments as a JSON object ('{"num_classes": 10}'); None -> {}."""
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"model kwargs are not valid JSON: {e.msg} at char {e.pos}") from None
    if not isinstance(value, dict):
        raise UserError("model kwargs must be a JSON object, e.g. '{\"num_classes\": 10}'")
    return value


def _import_target(spec: str):
    target, _, attr = spec.rpartition(":")
    if not target or not attr:
        raise UserError(f"bad model spec {spec!r}: expected zoo:NAME, module.path:factory or file.py:factory")
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise UserError(f"model file not found: {path}")
        name = f"_spp_user_{abs(hash(str(path.resolve())))}"
        mod_spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(mod_spec)
        sys.modules[name] = module
        try:
            mod_spec.loader.exec_module(module)
        except SystemExit as e:
            raise UserError(f"model file {path} exited while being imported ({_exit_text(e)})") from None
        except Exception as e:
            raise UserError(f"cannot import {path}: {type(e).__name__}: {first_line(e)}") from e
    else:
        try:
            module = importlib.import_module(target)
        except SystemExit as e:
            raise UserError(f"module {target!r} exited while being imported ({_exit_text(e)})") from None
        except Exception as e:
            raise UserError(f"cannot import module {target!r}: {type(e).__name__}: {first_line(e)}") from e
    try:
        return getattr(module, attr)
    except AttributeError:
        raise UserError(f"{target!r} has no attribute {attr!r}") from None


@contextlib.contextmanager
def _script_directory(path: Path):
    """The model file's directory first on ``sys.path`` while it is imported, as Python does for a
    script, so that it can import the modules beside it."""
    folder = str(path.resolve().parent)
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    try:
        yield
    finally:
        if added and folder in sys.path:
            sys.path.remove(folder)


def _exit_text(e: SystemExit) -> str:
    return f"sys.exit({e.code!r})" if e.code is not None else "sys.exit()"


def load_model(spec: str, kwargs: dict[str, Any] | None = None, weights: str | None = None) -> nn.Module:
    """Build the model named by ``spec``; it must be an nn.Module (returned in eval mode)."""
    kwargs = kwargs or {}
    if spec.startswith("zoo:"):
        from . import zoo

        try:
            model = zoo.create(spec[4:], **kwargs)
        except TypeError as e:
            raise UserError(f"bad keyword arguments for {spec}: {e}") from None
    else:
        target = spec.rpartition(":")[0]
        with _script_directory(Path(target)) if target.endswith(".py") else contextlib.nullcontext():
            model = _build(spec, kwargs)
    if not isinstance(model, nn.Module):
        raise UserError(f"{spec} returned {type(model).__name__}, not a torch.nn.Module")
    if weights:
        load_weights(model, weights)
    return model.eval()


def _build(spec: str, kwargs: dict[str, Any]):
    factory = _import_target(spec)
    if not callable(factory):
        raise UserError(f"{spec} is not callable")
    try:
        return factory(**kwargs)
    except SystemExit as e:
        raise UserError(f"{spec}(**kwargs) exited ({_exit_text(e)})") from None
    except Exception as e:
        raise UserError(f"{spec}(**kwargs) failed: {type(e).__name__}: {e}") from e


def load_weights(model: nn.Module, path: str) -> None:
    """State dict, or a checkpoint dict holding one under 'state_dict' or 'model'."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"weights file not found: {p}")
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": the error below says what matters
            warnings.simplefilter("ignore")
            ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:
        blocked = _blocked_global(str(e))
        if blocked:
            raise UserError(f"{p} contains code, not only tensors: loading it would call {blocked}, which the safe "
                            "loader blocks; a weights file should hold model.state_dict()") from None
        if "Unsupported global" in str(e):
            raise UserError(f"{p} holds a pickled object, not a state dict; save model.state_dict() instead") from e
        raise UserError(f"{p} is not a valid PyTorch checkpoint: {_load_failure(p, e)}") from e
    if isinstance(ckpt, dict):
        for key in ("state_dict", "model"):
            if isinstance(ckpt.get(key), dict):
                ckpt = ckpt[key]
                break
    if not isinstance(ckpt, dict) or not all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        raise UserError(f"{p} is not a state dict (or a checkpoint with 'state_dict'/'model')")
    misfit = state_dict_misfit(model.state_dict(), ckpt)
    if misfit:
        raise UserError(f"weights {p} do not fit the model: {misfit}")
    try:
        model.load_state_dict(ckpt)
    except RuntimeError as e:
        raise UserError(f"weights {p} do not fit the model: {first_line(e)}") from e


def _blocked_global(message: str) -> str | None:
    """The callable a pickle would have run ("posix.system"), from torch's weights_only refusal."""
    m = re.search(r"unsupported GLOBAL ([\w.]+) whose module [\w.]+ is blocked", message)
    return m.group(1) if m else None


def _load_failure(p: Path, e: Exception) -> str:
    """torch.load's reason in a few words (its message starts with a paragraph about weights_only)."""
    if p.stat().st_size == 0:
        return "the file is empty"
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    for i, ln in enumerate(lines):
        if ln.startswith("WeightsUnpickler error") and i + 1 < len(lines):
            return lines[i + 1]
    # torch's first paragraph advises weights_only=False, i.e. running the file's code: never relay it
    lines = [ln for ln in lines if "weights_only" not in ln and not ln.startswith("Weights only load failed")]
    reason = lines[0] if lines else type(e).__name__
    return reason if reason == type(e).__name__ else f"{type(e).__name__}: {reason}"


def _some(keys: Sequence[str], n: int = 3) -> str:
    return ", ".join(keys[:n]) + (f", ... ({len(keys)} in all)" if len(keys) > n else "")


def state_dict_misfit(own: dict, given: dict) -> str | None:
    """Missing and unexpected keys and shape mismatches, the first few of each, in one line."""
    missing = [k for k in own if k not in given]
    unexpected = [k for k in given if k not in own]
    shapes = [f"{k} {'x'.join(map(str, given[k].shape))} in the file, {'x'.join(map(str, own[k].shape))} in the model"
              for k in own if k in given and tuple(given[k].shape) != tuple(own[k].shape)]
    parts = []
    if missing:
        parts.append(f"missing keys: {_some(missing)}")
    if unexpected:
        parts.append(f"unexpected keys: {_some(unexpected)}")
    if shapes:
        parts.append(f"shape mismatch: {_some(shapes, 2)}")
    if unexpected and all(k.startswith("module.") for k in unexpected) and missing:
        parts.append("the file's keys start with 'module.' (saved from DataParallel?)")
    return "; ".join(parts) or None
