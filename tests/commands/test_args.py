"""One grammar per flag: every argument the commands share is defined once (``commands/args.py``),
its choices and defaults are the library's constants, and library messages name no flag."""

import argparse
import json
import pytest

from spp_deploy.util import constants
from spp_deploy.cli import build_parser, main
from spp_deploy.util.errors import UserError
from tiny import TINY


def _commands() -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _options(parser) -> dict[str, argparse.Action]:
    return {o: a for a in parser._actions for o in a.option_strings}


def test_shared_flags_have_one_definition():
    seen: dict[str, tuple] = {}
    for name, parser in _commands().items():
        for flag, a in _options(parser).items():
            if flag in ("-h", "--help", "-o", "--output"):
                continue
            grammar = (getattr(a.type, "__name__", a.type), a.nargs, a.const, a.metavar,
                       tuple(a.choices) if a.choices else None)
            if flag == "--backends":  # the same grammar over each command's own backend list
                grammar = grammar[:4]
            first = seen.setdefault(flag, (name, grammar))
            assert first[1] == grammar, f"{flag}: {first[0]} and {name} parse it differently"


def test_choices_and_defaults_come_from_the_library():
    for name in ("export", "bench"):
        opts = _options(_commands()[name])
        assert tuple(opts["--opset"].choices) == constants.OPSETS
        assert opts["--opset"].default == constants.DEFAULT_OPSET
        assert tuple(opts["--spp-impl"].choices) == constants.SPP_IMPLS
        assert opts["--spp-impl"].default == constants.DEFAULT_SPP_IMPL
    opts = _options(_commands()["export"])
    assert tuple(opts["--precision"].choices) == constants.PRECISIONS
    assert opts["--dynamic"].default == list(constants.DYNAMIC_AXES)


@pytest.mark.parametrize("command", [["validate", "--model", TINY, "--backends", "torch-fp64"],
                                     ["bench", "--model", TINY, "--backends", "torch"]])
def test_size_range_and_sizes_grammar_is_the_same_everywhere(capsys, command):
    assert main([*command, "--size-range", "8..16"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "argument --size-range: bad size range '8..16'" in err and "START:STOP" in err
    assert main([*command, "--sizes", "16"]) == 2
    assert "argument --sizes: bad size '16': expected HxW or BxHxW" in capsys.readouterr().err


def test_library_messages_name_no_flag():
    from spp_deploy.sources.loading import parse_kwargs
    from spp_deploy.runtime.backends import parse_backends
    from spp_deploy.util.shapes import parse_batches, parse_input_shape, parse_shapes, parse_size_range, parse_sizes

    for call in (lambda: parse_shapes(""), lambda: parse_sizes("1"), lambda: parse_size_range("9:3"),
                 lambda: parse_batches("0"), lambda: parse_backends(""), lambda: parse_backends("torch,torch"),
                 lambda: parse_kwargs("{"), lambda: parse_kwargs("[1]"), lambda: parse_input_shape("")):
        with pytest.raises(UserError) as e:
            call()
        assert "--" not in str(e.value), str(e.value)


def test_json_is_stdout_without_a_path_and_a_file_with_one(tmp_path, capsys):
    argv = ["validate", "--model", TINY, "--backends", "torch-fp64", "--sizes", "16x16"]
    assert main([*argv, "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["passed"] is True and "PASSED: 1 passed" in err
    assert main([*argv, "--json", str(tmp_path / "r.json")]) == 0
    assert "PASSED: 1 passed" in capsys.readouterr().out and json.loads((tmp_path / "r.json").read_text())["passed"]
    assert main(["inspect", "--model", TINY, "--input-shape", "1x3x16x16", "--json", str(tmp_path / "i.json")]) == 0
    assert json.loads((tmp_path / "i.json").read_text())["input_shape"] == [1, 3, 16, 16]
