"""``spp-deploy validate`` on exported files: JSON report, skipped sizes, summary, exit 1 on a mismatch."""

import json

import torch

from spp_deploy.sources import zoo


def test_validate_cli_json_skip_and_summary(exported, tmp_path, cli):
    rep = tmp_path / "r.json"
    code, out, err = cli("validate", "--model", "zoo:sppnet-zf5", "--onnx", exported["sppnet-zf5", "plugin"],
                         "--backends", "ort-cpu,torch-fp64", "--sizes", "64x64,5x5,71x93", "--batch", "1,2",
                         "--json", rep)
    assert code == 0, err
    assert out.count("PASSED ") == 8 and out.count("SKIPPED") == 4 and "top-1 100%" in out
    assert "PASSED: 8 passed, 0 failed, 4 skipped" in out
    data = json.loads(rep.read_text())
    assert data["passed"] and data["summary"] == {"PASSED": 8, "FAILED": 0, "SKIPPED": 4}
    r = next(x for x in data["results"] if x["status"] == "PASSED")
    assert {"max_abs", "max_abs_index", "max_rel", "mean_abs", "cosine", "top1_agreement"} <= set(r)
    skipped = [x for x in data["results"] if x["status"] == "SKIPPED"]
    assert all("cannot run here" in x["skipped"] for x in skipped)


def test_validate_cli_fails_with_exit_1(exported, tmp_path, cli):
    # The file holds the default weights; the PyTorch side gets other ones: a real mismatch.
    weights = tmp_path / "other.pt"
    torch.save(zoo.create("sppnet-zf5", seed=1).state_dict(), weights)
    code, out, err = cli("validate", "--model", "zoo:sppnet-zf5", "--model-kwargs", '{"num_classes": 1000}',
                         "--weights", weights, "--onnx", exported["sppnet-zf5", "standard"], "--sizes", "64x64",
                         "--rtol", "0", "--atol", "0", "--seed", "3")
    assert code == 1, out + err
    (line,) = [ln for ln in out.splitlines() if ln.startswith("FAILED ")]
    assert "1x3x64x64" in line and line.endswith("(limits atol 0 / rtol 0)")
    assert "FAILED: 0 passed, 1 failed, 0 skipped" in out
    # the same comparison with the file's own weights passes at the default tolerances
    code, out, err = cli("validate", "--model", "zoo:sppnet-zf5", "--onnx", exported["sppnet-zf5", "standard"],
                         "--sizes", "64x64", "--seed", "3")
    assert code == 0 and "PASSED: 1 passed, 0 failed, 0 skipped" in out, out + err
