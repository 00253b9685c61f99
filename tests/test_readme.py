"""Every ```python block in the README runs as written (offline, in a temp dir)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_examples() -> None:
    assert len(BLOCKS) >= 5


@pytest.mark.xdist_group("readme")
@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index: int, tmp_path: Path) -> None:
    script = tmp_path / f"example_{index}.py"
    script.write_text(BLOCKS[index])
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "CI": "true"}
    out = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
    )
    assert out.returncode == 0, f"README example {index} failed:\n{out.stdout}\n{out.stderr}"


def test_readme_commands_write_nothing_into_the_repository() -> None:
    """Output files named by README commands (``--json``, ``--out``) go outside the clone."""
    shell = "\n".join(re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S))
    targets = re.findall(r"--(?:json|out)\s+(\S+)", shell)
    assert targets, "the README's benchmark commands name their output files"
    for t in targets:
        assert Path(t).is_absolute() and not Path(t).resolve().is_relative_to(README.parent), t


def test_readme_gateway_yaml_is_a_valid_config_with_working_aliases(tmp_path: Path) -> None:
    """The README's ``gateway.yaml`` loads as written, and each alias builds its router
    with the options shown (a budget and a quota among them)."""
    from agentopt.gateway.config import load_config
    from agentopt.gateway.resolve import _make_router

    (block,) = [
        b
        for b in re.findall(r"```yaml\n(.*?)```", README.read_text(), flags=re.S)
        if b.startswith("# gateway.yaml")
    ]
    path = tmp_path / "gateway.yaml"
    path.write_text(block)
    config = load_config(path)
    routers = {name: _make_router(name, a) for name, a in config.aliases.items()}
    assert set(routers) == {"smart", "safe", "capped"}
    limits = routers["capped"].limits
    assert limits.budget_usd == 50 and limits.quotas["openai/gpt-4o"].max_calls == 100
