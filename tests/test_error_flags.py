"""Library exceptions name the library's arguments; command-line flags appear only in the CLI."""

import re


def test_library_messages_name_no_command_line_flag():
    """Library exceptions name the library's arguments (``UserError.option``); only cli.py and
    commands/ name flags (via flag_for)."""
    import ast
    from pathlib import Path

    import spp_deploy

    root = Path(spp_deploy.__file__).parent
    external = {"--extra-index-url", "--build", "--target"}  # pip's and cmake's flags, not ours
    found = []
    for f in root.rglob("*.py"):
        if f.name == "cli.py" or "commands" in f.parts:
            continue
        for r in (n for n in ast.walk(ast.parse(f.read_text())) if isinstance(n, ast.Raise)):
            for n in ast.walk(r):
                if isinstance(n, ast.Constant) and isinstance(n.value, str):
                    for flag in re.findall(r"(?<![\w-])--[a-z][a-z-]+", n.value):
                        if flag not in external:
                            found.append(f"{f.relative_to(root)}:{n.lineno}: {flag}")
    assert not found, found
