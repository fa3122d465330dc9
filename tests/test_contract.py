"""The Python contract (spp_deploy.contract) and the plugin's C++ headers say the same thing:
plugin name and version, the C ABI's enum numbers, the status codes."""

import re
from pathlib import Path

from spp_deploy import contract
from spp_deploy.ops import bins

PLUGINS = Path(contract.__file__).resolve().parent.parent / "plugins"
PLUGIN_DIR = PLUGINS / "spatialPyramidPoolPlugin"
COMMON_DIR = PLUGINS / "common"  # what both plugins share: the bin math, dtype and status enums


def _enum(text: str, name: str) -> dict[str, int]:
    body = re.search(rf"enum (?:class )?{name}\b[^{{]*\{{(.*?)\}};", text, re.S).group(1)
    return {k: int(v) for k, v in re.findall(r"(k\w+)\s*=\s*(\d+)", body)}


def test_plugin_name_and_version_match_the_header():
    header = (PLUGIN_DIR / "spatialPyramidPoolPlugin.h").read_text()
    consts = dict(re.findall(r'constexpr char const\* (kSPP_PLUGIN_\w+) = "([^"]*)";', header))
    assert consts["kSPP_PLUGIN_NAME"] == contract.PLUGIN_NAME == contract.SPP_OP
    assert consts["kSPP_PLUGIN_VERSION"] == contract.PLUGIN_VERSION


def test_enum_numbers_match_sppBins_h():
    text = (COMMON_DIR / "sppBins.h").read_text()
    for enum, codes in (("BinRule", contract.RULE_CODES), ("PoolMode", contract.MODE_CODES),
                        ("FlattenOrder", contract.ORDER_CODES)):
        cpp = _enum(text, enum)
        assert {k[1:].lower(): v for k, v in cpp.items()} == codes, enum
    assert list(contract.RULE_CODES) == list(bins.RULES)


def test_level_limit_matches_sppBins_h():
    text = (COMMON_DIR / "sppBins.h").read_text()
    assert int(re.search(r"kMAX_NB_LEVELS = (\d+);", text).group(1)) == contract.MAX_NB_LEVELS


def test_status_codes_match_the_kernel_header():
    cpp = _enum((COMMON_DIR / "sppTypes.h").read_text(), "SppStatus")
    assert {k.removeprefix("kSPP_"): v for k, v in cpp.items()} == {s.name: int(s) for s in contract.Status}


def test_one_definition_of_each_name():
    """The contract's names are assigned nowhere else in the package."""
    root = Path(contract.__file__).parent
    names = ("SPP_DOMAIN", "SPP_OP", "TAB_OP", "PLUGIN_NAME", "PLUGIN_VERSION", "PLUGIN_NAMESPACE", "EDGE_F32_MARK")
    for f in root.rglob("*.py"):
        if f.name == "contract.py":
            continue
        text = f.read_text()
        for n in names:
            assert not re.search(rf"^\s*{n}\s*=", text, re.M), f"{f}: {n} defined again"
        assert not re.search(r"^class SppConfig\b", text, re.M), f"{f}: a second SppConfig"
