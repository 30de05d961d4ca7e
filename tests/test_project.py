"""Promises about the project itself: the core's boundary, and documentation that stays true."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from convscope.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[1]
CORE = ["convscope.data", "convscope.models", "convscope.training", "convscope.inspect", "convscope.preprocessing",
        "convscope.metrics", "convscope.predict", "convscope.images"]
# (tqdm and argparse cannot be listed: torch itself imports them.)
SHELL_ONLY = ["convscope.cli", "convscope.render", "fastapi", "starlette", "sqlalchemy", "uvicorn", "matplotlib"]


@pytest.mark.slow  # a fresh interpreter
def test_the_ml_core_imports_no_shell_code():
    code = (f"import sys; import {', '.join(CORE)}; "
            f"print([m for m in {SHELL_ONLY!r} if m in sys.modules])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_every_cli_command_is_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    commands = build_parser()._subparsers._group_actions[0].choices
    for name in commands:
        assert f"convscope {name}" in readme, name


def test_every_serve_option_is_in_the_readme():
    """Options that override a CONVSCOPE_* setting are documented with it; the others by name."""
    from convscope.cli.serve import FLAGS

    readme = (ROOT / "README.md").read_text()
    serve = build_parser(only_serve=True)._subparsers._group_actions[0].choices["serve"]
    for action in serve._actions:
        for flag in action.option_strings:
            setting = flag.removeprefix("--").replace("-", "_")
            if flag.startswith("--") and flag != "--help" and setting not in FLAGS:
                assert re.search(rf"{flag}\b", readme), flag


def test_every_server_setting_is_a_serve_flag():
    from convscope.cli.serve import FLAGS
    from convscope.server.settings import ServerSettings

    assert set(ServerSettings.model_fields) - set(FLAGS) == {"user_models"}  # that one: --model-file


def test_every_setting_is_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    source = "".join(p.read_text() for p in (ROOT / "src" / "convscope").rglob("*.py"))
    variables = set(re.findall(r"CONVSCOPE_[A-Z_]+", source))
    assert variables, "no settings found"
    for variable in variables:
        assert f"`{variable}`" in readme, variable


def test_every_server_setting_and_api_route_is_in_the_readme(tmp_path):
    from convscope.server.app import create_app
    from convscope.server.settings import ServerSettings

    readme = (ROOT / "README.md").read_text()
    for name in ServerSettings.model_fields:
        assert f"`CONVSCOPE_{name.upper()}`" in readme, name
    app = create_app(ServerSettings(data_dir=tmp_path))
    routes = [(method.upper(), path) for path, methods in app.openapi()["paths"].items() for method in methods]
    assert len(routes) >= 25
    for method, path in routes:
        assert f"`{method} {path}`" in readme, (method, path)


@pytest.mark.slow  # a fresh interpreter
def test_the_server_module_imports_no_torch_until_it_must():
    """`convscope serve`'s own process only supervises the workers: it must not pay for importing torch."""
    code = "import sys; from convscope.cli.main import build_parser; build_parser(only_serve=True); " \
           "from convscope.server.settings import ServerSettings; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
