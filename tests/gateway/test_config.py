"""The gateway config: YAML validated with pydantic, errors that name file, key and expectation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agentopt.exceptions import ConfigError
from agentopt.gateway.config import GatewayConfig, load_config

README = Path(__file__).resolve().parents[2] / "README.md"


def test_no_file_means_defaults() -> None:
    cfg = load_config(None)
    assert cfg == GatewayConfig()
    assert cfg.keys == "engine" and cfg.aliases == {} and not cfg.redact


def test_the_readme_config_is_valid(tmp_path: Path) -> None:
    block = next(
        b for b in re.findall(r"```yaml\n(.*?)```", README.read_text(), re.S) if "aliases:" in b
    )
    path = tmp_path / "gateway.yaml"
    path.write_text(block)
    cfg = load_config(path)
    assert cfg.aliases["smart"].router == "thompson"
    assert cfg.providers["vllm"].base_url == "http://127.0.0.1:8000/v1"


@pytest.mark.parametrize(
    ("text", "where", "expected"),
    [
        ("keys: everyone\n", "'keys'", "'engine', 'caller' or 'caller-first'"),
        ("aliases:\n  a:\n    targets: [gpt-4o]\n", "'aliases.a.targets'", "provider/model"),
        ("aliases:\n  a:\n    targets: []\n", "'aliases.a.targets'", "at least 1"),
        ("providers:\n  p: {base_url: ftp://x}\n", "'providers.p.base_url'", "absolute http"),
        ("redcat: true\n", "'redcat'", "unknown key"),
        ("max_body_bytes: -1\n", "'max_body_bytes'", "greater than 0"),
    ],
)
def test_a_bad_file_names_the_file_the_key_and_the_expectation(
    tmp_path: Path, text: str, where: str, expected: str
) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    msg = str(err.value)
    assert str(path) in msg and where in msg and expected in msg, msg


def test_unreadable_and_non_mapping_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "list.yaml"
    bad.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(bad)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"redact: \xe9\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(latin)
    broken = tmp_path / "broken.yaml"
    broken.write_text("aliases: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(broken)
