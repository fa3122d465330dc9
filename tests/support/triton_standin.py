"""A small local stand-in for Triton Inference Server, for testing spp-deploy's client side with
the real ``tritonclient`` calls over real sockets (no tritonserver can run here).

It serves a model repository written by ``spp-deploy triton`` (ONNX models only, run with ONNX
Runtime on the CPU) over the KServe v2 protocol Triton speaks: gRPC through the service stubs
``tritonclient`` ships (``service_pb2_grpc``), HTTP/REST with Triton's binary tensor extension.
Requests are checked against config.pbtxt the way Triton checks them (input names, ranks, fixed
dims, batch <= max_batch_size). It is not Triton: no dynamic batching, no scheduling, no metrics.
"""

from __future__ import annotations

import json
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import onnxruntime as ort

from spp_deploy.triton.schema import model_config_pb2, parse_text


class Refused(Exception):
    """A request the server refuses (HTTP 400 / gRPC INVALID_ARGUMENT) with this message."""


class Repository:
    def __init__(self, root: Path) -> None:
        self.models = {}
        for cfg_path in sorted(Path(root).glob("*/config.pbtxt")):
            cfg = parse_text(cfg_path.read_text())
            sess = ort.InferenceSession(str(cfg_path.parent / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
            self.models[cfg.name] = (cfg, sess)

    def config(self, name: str):
        if name not in self.models:
            raise Refused(f"Request for unknown model: '{name}' is not found")
        return self.models[name][0]

    def metadata(self, name: str) -> dict:
        cfg = self.config(name)
        pb2 = model_config_pb2()

        def tensors(ts):
            return [{"name": t.name, "datatype": pb2.DataType.Name(t.data_type)[5:],
                     "shape": [-1] * (cfg.max_batch_size > 0) + list(t.dims)} for t in ts]

        return {"name": name, "versions": ["1"], "platform": cfg.platform, "inputs": tensors(cfg.input),
                "outputs": tensors(cfg.output)}

    def infer(self, name: str, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        cfg, sess = self.config(name), self.models[name][1]
        if sorted(arrays) != sorted(t.name for t in cfg.input):
            raise Refused(f"expected inputs {[t.name for t in cfg.input]}, got {sorted(arrays)}")
        for t in cfg.input:
            shape = arrays[t.name].shape
            dims = list(t.dims)
            if cfg.max_batch_size:
                if len(shape) != len(dims) + 1:
                    raise Refused(f"unexpected shape for input '{t.name}' for model '{name}'")
                if shape[0] > cfg.max_batch_size:
                    raise Refused(f"inference request batch-size must be <= {cfg.max_batch_size} for '{name}'")
                shape = shape[1:]
            if len(shape) != len(dims) or any(d != -1 and d != s for d, s in zip(dims, shape)):
                raise Refused(f"unexpected shape for input '{t.name}' for model '{name}'")
        try:
            outs = sess.run(None, arrays)
        except Exception as e:  # the model itself fails at this input: Triton returns the backend's error
            raise Refused(f"onnx runtime error: {str(e).splitlines()[0]}") from None
        return dict(zip([o.name for o in sess.get_outputs()], outs))


def _np_dtype(datatype: str):
    from tritonclient.utils import triton_to_np_dtype

    return triton_to_np_dtype(datatype)


def _triton_dtype(arr: np.ndarray) -> str:
    from tritonclient.utils import np_to_triton_dtype

    return np_to_triton_dtype(arr.dtype)


# ---- HTTP/REST -----------------------------------------------------------------------------------

def _http_handler(repo: Repository):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as tritonclient's connection pool expects

        def log_message(self, *args):  # quiet
            pass

        def _send(self, code: int, body: bytes = b"", headers: dict | None = None) -> None:
            self.send_response(code)
            for k, v in (headers or {}).items():
                self.send_header(k, str(v))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _json(self, obj, code: int = 200) -> None:
            self._send(code, json.dumps(obj).encode(), {"Content-Type": "application/json"})

        def _route(self) -> list[str]:
            parts = self.path.split("?", 1)[0].strip("/").split("/")
            if len(parts) >= 4 and parts[3] == "versions":  # v2/models/NAME/versions/V/...
                parts = parts[:3] + parts[5:]
            return parts

        def do_GET(self):
            p = self._route()
            try:
                if p in (["v2", "health", "live"], ["v2", "health", "ready"]):
                    return self._send(200)
                if p[:2] == ["v2", "models"] and len(p) == 4 and p[3] == "ready":
                    return self._send(200 if p[2] in repo.models else 400)
                if p[:2] == ["v2", "models"] and len(p) == 3:
                    return self._json(repo.metadata(p[2]))
                if p[:2] == ["v2", "models"] and len(p) == 4 and p[3] == "config":
                    from google.protobuf.json_format import MessageToDict

                    return self._json(MessageToDict(repo.config(p[2]), preserving_proto_field_name=True))
            except Refused as e:
                return self._json({"error": str(e)}, 400)
            self._json({"error": f"not found: {self.path}"}, 404)

        def do_POST(self):
            p = self._route()
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if p == ["v2", "repository", "index"]:
                return self._json([{"name": n, "version": "1", "state": "READY"} for n in repo.models])
            if not (p[:2] == ["v2", "models"] and len(p) == 4 and p[3] == "infer"):
                return self._json({"error": f"not found: {self.path}"}, 404)
            size = int(self.headers.get("Inference-Header-Content-Length") or len(body))
            request, blob = json.loads(body[:size]), body[size:]
            arrays, offset = {}, 0
            for t in request["inputs"]:
                n = t.get("parameters", {}).get("binary_data_size")
                dtype = _np_dtype(t["datatype"])
                if n is None:
                    arrays[t["name"]] = np.asarray(t["data"], dtype=dtype).reshape(t["shape"])
                else:
                    arrays[t["name"]] = np.frombuffer(blob[offset:offset + n], dtype=dtype).reshape(t["shape"])
                    offset += n
            try:
                outs = repo.infer(p[2], arrays)
            except Refused as e:
                return self._json({"error": str(e)}, 400)
            wanted = [o["name"] for o in request.get("outputs", [])] or list(outs)
            header = {"model_name": p[2], "model_version": "1", "outputs": []}
            raw = b""
            for name in wanted:
                arr = np.ascontiguousarray(outs[name])
                header["outputs"].append({"name": name, "datatype": _triton_dtype(arr), "shape": list(arr.shape),
                                          "parameters": {"binary_data_size": arr.nbytes}})
                raw += arr.tobytes()
            head = json.dumps(header).encode()
            self._send(200, head + raw, {"Content-Type": "application/octet-stream",
                                         "Inference-Header-Content-Length": len(head)})

    return Handler


# ---- gRPC ----------------------------------------------------------------------------------------

def _grpc_servicer(repo: Repository):
    import grpc
    from tritonclient.grpc import service_pb2 as pb
    from tritonclient.grpc import service_pb2_grpc

    class Servicer(service_pb2_grpc.GRPCInferenceServiceServicer):
        def ServerLive(self, request, context):
            return pb.ServerLiveResponse(live=True)

        def ServerReady(self, request, context):
            return pb.ServerReadyResponse(ready=True)

        def ModelReady(self, request, context):
            return pb.ModelReadyResponse(ready=request.name in repo.models)

        def ModelMetadata(self, request, context):
            try:
                m = repo.metadata(request.name)
            except Refused as e:
                context.abort(grpc.StatusCode.NOT_FOUND, str(e))
            tensors = lambda ts: [pb.ModelMetadataResponse.TensorMetadata(**t) for t in ts]  # noqa: E731
            return pb.ModelMetadataResponse(name=m["name"], versions=m["versions"], platform=m["platform"],
                                            inputs=tensors(m["inputs"]), outputs=tensors(m["outputs"]))

        def ModelConfig(self, request, context):
            try:
                return pb.ModelConfigResponse(config=repo.config(request.name))
            except Refused as e:
                context.abort(grpc.StatusCode.NOT_FOUND, str(e))

        def RepositoryIndex(self, request, context):
            index = pb.RepositoryIndexResponse.ModelIndex
            return pb.RepositoryIndexResponse(models=[index(name=n, version="1", state="READY") for n in repo.models])

        def ModelInfer(self, request, context):
            arrays = {t.name: np.frombuffer(raw, dtype=_np_dtype(t.datatype)).reshape(tuple(t.shape))
                      for t, raw in zip(request.inputs, request.raw_input_contents)}
            try:
                outs = repo.infer(request.model_name, arrays)
            except Refused as e:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
            wanted = [o.name for o in request.outputs] or list(outs)
            resp = pb.ModelInferResponse(model_name=request.model_name, model_version="1")
            for name in wanted:
                arr = np.ascontiguousarray(outs[name])
                resp.outputs.add(name=name, datatype=_triton_dtype(arr), shape=list(arr.shape))
                resp.raw_output_contents.append(arr.tobytes())
            return resp

    return Servicer()


class StandIn:
    """``with StandIn(repo) as s:`` serves ``repo`` on ``s.http_url`` and ``s.grpc_url`` (local ports)."""

    def __init__(self, root: Path) -> None:
        self.repo = Repository(root)

    def __enter__(self) -> "StandIn":
        import grpc
        from tritonclient.grpc import service_pb2_grpc

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), _http_handler(self.repo))
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)
        self._thread.start()
        self.http_url = f"127.0.0.1:{self._http.server_address[1]}"
        self._grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(_grpc_servicer(self.repo), self._grpc)
        port = self._grpc.add_insecure_port("127.0.0.1:0")
        self._grpc.start()
        self.grpc_url = f"127.0.0.1:{port}"
        return self

    def __exit__(self, *exc) -> None:
        self._grpc.stop(grace=None)
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(timeout=5)
