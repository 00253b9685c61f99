from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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


def _imported(path: Path) -> list[str]:
    """The modules a source file imports, anywhere in it (functions included)."""
    import ast

    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


def test_tracking_never_imports_gateway() -> None:
    """The dependency direction: gateway/ uses tracking/, never the reverse."""
    root = Path(agentopt.__file__).parent / "tracking"
    for path in root.rglob("*.py"):
        for name in _imported(path):
            assert not name.startswith("agentopt.gateway"), f"{path.name} imports {name}"


def test_the_selection_statistics_never_import_the_running_room() -> None:
    """selectors/run/ (the loop, live evaluation, executors, store) is used by the
    facade (selector.py) and by offline replay (replay.py); the strategies, tests,
    stopping rules and results never import it, so they stay usable on their own."""
    root = Path(agentopt.__file__).parent / "selectors"
    users = {"selector.py", "replay.py", "__init__.py"}
    checked = 0
    for path in root.rglob("*.py"):
        if path.parent.name == "run" or (path.parent == root and path.name in users):
            continue
        checked += 1
        for name in _imported(path):
            assert not name.startswith("agentopt.selectors.run"), f"{path.name} imports {name}"
    assert checked > 20


def _scripts_imports() -> list[tuple[str, int, str, list[str]]]:
    """Every ``agentopt``/``tests`` import in the experiments, examples and notebooks
    (inside functions too): (file, line, module, names imported from it)."""
    import ast
    import json

    root = Path(__file__).resolve().parent.parent
    sources: list[tuple[str, str]] = [
        (str(p.relative_to(root)), p.read_text(encoding="utf-8"))
        for d in ("experiments", "examples", "notebooks")
        for p in sorted((root / d).glob("*.py"))
    ]
    for nb in sorted((root / "notebooks").glob("*.ipynb")):
        cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
        code = "\n".join(
            line
            for c in cells
            if c["cell_type"] == "code"
            for line in "".join(c["source"]).splitlines()
            if not line.lstrip().startswith(("%", "!"))
        )
        sources.append((str(nb.relative_to(root)), code))
    out: list[tuple[str, int, str, list[str]]] = []
    for name, text in sources:
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module.split(".")[0] in ("agentopt", "tests"):
                    out.append((name, node.lineno, node.module, [a.name for a in node.names]))
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.split(".")[0] in ("agentopt", "tests"):
                        out.append((name, node.lineno, a.name, []))
    return out


def test_every_agentopt_import_in_the_experiments_examples_and_notebooks_resolves() -> None:
    """A module moved inside the package (or a test helper moved) must not leave a
    script that fails only when someone runs it: lazy imports inside functions
    included (experiments/bench_replicas.py imported a helper from its old place)."""
    import importlib

    found = _scripts_imports()
    assert len(found) > 50  # the walk sees the scripts' imports
    broken = []
    for where, line, module, names in found:
        try:
            mod = importlib.import_module(module)
        except ImportError as exc:
            broken.append(f"{where}:{line}: {module} ({exc})")
            continue
        for n in names:
            if not hasattr(mod, n):
                try:
                    importlib.import_module(f"{module}.{n}")
                except ImportError:
                    broken.append(f"{where}:{line}: {module}.{n}")
    assert not broken, "\n".join(broken)
