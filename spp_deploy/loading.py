"""Load the user's model: ``zoo:NAME``, ``module.path:factory`` or ``path/file.py:factory``,
optional kwargs and a weights file read with ``torch.load(weights_only=True)``."""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import UserError, first_line


def parse_shape(text: str) -> tuple[int, ...]:
    """'1x3x224x224' -> (1, 3, 224, 224); one-line error on anything else."""
    if not re.fullmatch(r"\s*\d+(\s*x\s*\d+)*\s*", text or ""):
        raise UserError(f"bad shape {text!r}: expected positive integers joined by 'x', e.g. 1x3x224x224")
    dims = tuple(int(v) for v in text.replace(" ", "").split("x"))
    if any(d <= 0 for d in dims):
        raise UserError(f"bad shape {text!r}: every dimension must be >= 1")
    return dims


def parse_input_shape(text: str) -> tuple[int, int, int, int]:
    dims = parse_shape(text)
    if len(dims) != 4:
        raise UserError(f"bad input shape {text!r}: expected 4 dims BxCxHxW, got {len(dims)}")
    return dims  # type: ignore[return-value]


def parse_kwargs(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"--model-kwargs is not valid JSON: {e.msg} at char {e.pos}") from None
    if not isinstance(value, dict):
        raise UserError("--model-kwargs must be a JSON object, e.g. '{\"num_classes\": 10}'")
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
        except Exception as e:
            raise UserError(f"cannot import {path}: {type(e).__name__}: {e}") from e
    else:
        try:
            module = importlib.import_module(target)
        except Exception as e:
            raise UserError(f"cannot import module {target!r}: {type(e).__name__}: {e}") from e
    try:
        return getattr(module, attr)
    except AttributeError:
        raise UserError(f"{target!r} has no attribute {attr!r}") from None


def load_model(spec: str, kwargs: dict[str, Any] | None = None, weights: str | None = None) -> nn.Module:
    """Build the model named by ``spec``; it must be an nn.Module (returned in eval mode)."""
    kwargs = kwargs or {}
    if spec.startswith("zoo:"):
        from . import zoo

        try:
            model = zoo.create(spec[4:], **kwargs)
        except TypeError as e:
            raise UserError(f"bad --model-kwargs for {spec}: {e}") from None
    else:
        factory = _import_target(spec)
        if not callable(factory):
            raise UserError(f"{spec} is not callable")
        try:
            model = factory(**kwargs)
        except Exception as e:
            raise UserError(f"{spec}(**kwargs) failed: {type(e).__name__}: {e}") from e
    if not isinstance(model, nn.Module):
        raise UserError(f"{spec} returned {type(model).__name__}, not a torch.nn.Module")
    if weights:
        load_weights(model, weights)
    return model.eval()


def load_weights(model: nn.Module, path: str) -> None:
    """State dict, or a checkpoint dict holding one under 'state_dict' or 'model'."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"weights file not found: {p}")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:
        msg = first_line(e)
        if "weights_only" in str(e) or "Unsupported global" in str(e):
            raise UserError(f"{p} holds a pickled object, not a state dict; save model.state_dict() instead") from e
        raise UserError(f"cannot read weights {p}: {msg}") from e
    if isinstance(ckpt, dict):
        for key in ("state_dict", "model"):
            if isinstance(ckpt.get(key), dict):
                ckpt = ckpt[key]
                break
    if not isinstance(ckpt, dict) or not all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        raise UserError(f"{p} is not a state dict (or a checkpoint with 'state_dict'/'model')")
    try:
        model.load_state_dict(ckpt)
    except RuntimeError as e:
        raise UserError(f"weights {p} do not fit the model: {first_line(e)}") from e
