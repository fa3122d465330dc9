"""``spp-deploy inspect``: the right rule for every zoo model, legal sizes, JSON form."""

import json

import pytest


EXPECT = {
    "sppnet-zf5": ("adaptive", "max", "channel_major", [6, 3, 2, 1], "structure"),
    "sppnet-pytorch": ("ceil_pad", "max", "channel_major", [4, 2, 1], "function"),
    "detection-net-spp": ("floor_kernel", "max", "channel_major", [1, 2, 4], "type"),
    "keras-spp": ("rounded", "max", "bin_major", [1, 2, 4], "type"),
}


def inspect_json(cli, *argv):
    code, out, err = cli("inspect", *argv, "--json")
    assert code == 0, err
    return json.loads(out)


@pytest.mark.parametrize("name", sorted(EXPECT))
def test_zoo_models_report_their_rule(cli, name):
    (layer,) = inspect_json(cli, "--model", f"zoo:{name}")["layers"]
    c = layer["config"]
    assert (c["rule"], c["mode"], c["order"], c["levels"], layer["how"]) == EXPECT[name]
    assert layer["status"] == "match" and layer["action"].startswith(("replace", "patch"))
    assert layer["feature_size"] == layer["channels"] * sum(n * n for n in c["levels"])


def test_seed000_names_illegal_sizes(cli):
    (layer,) = inspect_json(cli, "--model", "zoo:sppnet-pytorch")["layers"]
    assert layer["legal_at_spp_input"] == "H, W not in {1-3, 5, 9}"
    # conv5 (4x4, no padding) maps input S to S - 3: the seed raises at S - 3 in {1, 2, 3, 5, 9}.
    assert layer["illegal_model_input"]["H"] == [1, 2, 3, 4, 5, 6, 8, 12]


def test_floor_kernel_legal_widths(cli):
    (layer,) = inspect_json(cli, "--model", "zoo:detection-net-spp")["layers"]
    assert layer["spp_input"] == [4, 4] and layer["legal_at_spp_input"].endswith("at H=4: W in {4}")
    assert 64 not in layer["illegal_model_input"]["W"] and 80 in layer["illegal_model_input"]["W"]


def test_yolo_reports_sppf_rewrite_and_off_switch(cli):
    (layer,) = inspect_json(cli, "--model", "zoo:yolo-spp")["layers"]
    assert layer["kind"] == "ultralytics SPP" and "SPPF" in layer["action"]
    (layer,) = inspect_json(cli, "--model", "zoo:yolo-spp", "--no-sppf")["layers"]
    assert layer["action"] == "export as is (keeps H, W)"


def test_table_output(cli):
    code, out, err = cli("inspect", "--model", "zoo:keras-spp")
    assert code == 0, err
    assert "rounded" in out and "bin_major" in out and "replace with canonical op" in out


def test_bad_declaration_is_one_line(cli):
    code, _, err = cli("inspect", "--model", "zoo:keras-spp", "--spp-layer", "nope=levels:2")
    assert code == 2 and "--spp-layer: declared SPP layer 'nope' is not a module" in err and err.count("\n") == 1
