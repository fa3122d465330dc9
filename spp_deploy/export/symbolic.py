"""Symbolic ONNX backend for the bin rules: the rules in ``spp_deploy.ops.bins`` run unchanged on
``Sym`` values and emit onnx-graphsurgeon nodes instead of computing numbers.

That is how the exported graph computes bin edges from a dynamic H/W without a second copy
of any formula.
"""

from __future__ import annotations

import itertools
from typing import Any, Sequence

import numpy as np
import onnx_graphsurgeon as gs

_INT = np.int64
_F32 = np.float32


class GraphBuilder:
    """Appends nodes to a list; every tensor name carries a unique prefix."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.nodes: list[gs.Node] = []
        self._ids = itertools.count()

    def _name(self, hint: str) -> str:
        return f"{self.prefix}/{hint}_{next(self._ids)}"

    def const(self, value: Any, dtype: Any) -> "Sym":
        arr = np.asarray(value, dtype=dtype)
        return Sym(self, gs.Constant(self._name("c"), arr), np.dtype(dtype))

    def op(self, op: str, inputs: Sequence[Any], dtype: Any, **attrs: Any) -> "Sym":
        """One node with one output of ``dtype``; Python numbers become constants."""
        tensors = [self.lift(v, dtype).tensor if not isinstance(v, gs.Tensor) else v for v in inputs]
        out = gs.Variable(self._name(op.lower()), dtype=np.dtype(dtype))
        self.nodes.append(gs.Node(op, name=self._name(op), attrs=attrs, inputs=tensors, outputs=[out]))
        return Sym(self, out, np.dtype(dtype))

    def lift(self, v: Any, dtype: Any) -> "Sym":
        return v if isinstance(v, Sym) else self.const(v, dtype)


class Sym:
    """A tensor in the graph being built, with the arithmetic the bin rules use."""

    __hash__ = object.__hash__

    def __init__(self, b: GraphBuilder, tensor: gs.Tensor, dtype: np.dtype) -> None:
        self.b, self.tensor, self.dtype = b, tensor, dtype

    def _bin(self, op: str, other: Any, swap: bool = False, out_dtype: Any = None) -> "Sym":
        o = self.b.lift(other, self.dtype)
        a, c = (o, self) if swap else (self, o)
        return self.b.op(op, [a.tensor, c.tensor], out_dtype or self.dtype)

    __add__ = lambda s, o: s._bin("Add", o)  # noqa: E731
    __radd__ = lambda s, o: s._bin("Add", o, True)  # noqa: E731
    __sub__ = lambda s, o: s._bin("Sub", o)  # noqa: E731
    __rsub__ = lambda s, o: s._bin("Sub", o, True)  # noqa: E731
    __mul__ = lambda s, o: s._bin("Mul", o)  # noqa: E731
    __rmul__ = lambda s, o: s._bin("Mul", o, True)  # noqa: E731
    __truediv__ = lambda s, o: s._bin("Div", o)  # noqa: E731
    __ge__ = lambda s, o: s._bin("GreaterOrEqual", o, out_dtype=np.bool_)  # noqa: E731
    __le__ = lambda s, o: s._bin("LessOrEqual", o, out_dtype=np.bool_)  # noqa: E731
    __lt__ = lambda s, o: s._bin("Less", o, out_dtype=np.bool_)  # noqa: E731
    __eq__ = lambda s, o: s._bin("Equal", o, out_dtype=np.bool_)  # noqa: E731


class OnnxOps:
    """The ops backend of ``spp_deploy.ops.bins`` for symbolic ONNX tensors."""

    def __init__(self, builder: GraphBuilder) -> None:
        self.b = builder

    def arange(self, n: int) -> Sym:
        return self.b.const(np.arange(n), _INT)

    def const(self, v: int) -> Sym:
        return self.b.const(v, _INT)

    def _sym(self, v: Any, dtype: Any = _INT) -> Sym:
        return self.b.lift(v, dtype)

    def minimum(self, a: Any, c: Any) -> Sym:
        return self.b.op("Min", [self._sym(a).tensor, self._sym(c).tensor], _INT)

    def maximum(self, a: Any, c: Any) -> Sym:
        return self.b.op("Max", [self._sym(a).tensor, self._sym(c).tensor], _INT)

    def logical_and(self, a: Any, c: Any) -> Sym:
        return self.b.op("And", [self._sym(a, np.bool_).tensor, self._sym(c, np.bool_).tensor], np.bool_)

    def to_f32(self, x: Any) -> Sym:
        if not isinstance(x, Sym):
            return self.b.const(x, _F32)
        return self.b.op("Cast", [x.tensor], _F32, to=int(gs_dtype(_F32)))

    def rint_to_i64(self, x: Sym) -> Sym:
        r = self.b.op("Round", [x.tensor], _F32)  # ONNX Round: half to even, like numpy.rint
        return self.b.op("Cast", [r.tensor], _INT, to=int(gs_dtype(_INT)))

    def floordiv(self, a: Any, c: Any) -> Sym:
        # Operands are non-negative in every rule: ONNX's truncating Div equals floor division.
        return self.b.op("Div", [self._sym(a).tensor, self._sym(c).tensor], _INT)


def gs_dtype(dtype: Any) -> int:
    """The onnx.TensorProto enum of a numpy dtype."""
    from onnx import helper

    return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
