from __future__ import annotations

import subprocess
import sys

import agentopt


def test_import_agentopt_does_not_import_litellm() -> None:
    code = (
        "import sys, agentopt, agentopt.cli, agentopt.records, agentopt.pricing;"
        "agentopt.PriceBook().cost('gpt-4o-mini', 1, 1);"
        "print('litellm' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_every_public_name_resolves() -> None:
    for name in agentopt.__all__:
        assert getattr(agentopt, name) is not None, name


def test_all_is_exactly_the_lazy_names() -> None:
    assert set(agentopt.__all__) == set(agentopt._LAZY) | {"__version__"}
    assert len(agentopt.__all__) == len(set(agentopt.__all__))


def test_unknown_attribute_raises_attribute_error() -> None:
    try:
        agentopt.NoSuchThing  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("expected AttributeError")


def test_tracking_never_imports_gateway() -> None:
    """The dependency direction: gateway/ uses tracking/, never the reverse."""
    import ast
    from pathlib import Path

    root = Path(agentopt.__file__).parent / "tracking"
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert not name.startswith("agentopt.gateway"), f"{path.name} imports {name}"
