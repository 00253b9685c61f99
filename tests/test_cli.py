from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from agentopt import __version__
from agentopt.cli import _HANDLERS, build_parser, main


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"agentopt {__version__}"


def test_help_lists_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for cmd in ("demo", "sim", "serve", "bench", "report"):
        assert cmd in out


def test_unknown_subcommand_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["frobnicate"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'frobnicate'" in err
    assert "agentopt --help" in err


def test_no_subcommand_prints_help_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def test_unbuilt_subcommand_says_so_and_exits_nonzero(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(_HANDLERS, "report", "agentopt._no_such_module:cli_main")
    assert main(["report", "x.jsonl"]) == 2
    assert "not built yet" in capsys.readouterr().err


def test_entry_point_runs_as_a_module() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "agentopt.cli", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.startswith("agentopt ")


def _all_parsers(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser]]:
    out = [(parser.prog, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                out.extend(_all_parsers(sub))
    return out


def test_every_flag_of_every_subcommand_has_help_text() -> None:
    missing = [
        f"{prog} {'/'.join(a.option_strings) or a.dest}"
        for prog, p in _all_parsers(build_parser())
        for a in p._actions
        if not isinstance(a, argparse._SubParsersAction) and not a.help
    ]
    assert missing == []


def test_sim_lists_its_worlds(capsys: pytest.CaptureFixture[str]) -> None:
    from agentopt.sim.world import builtin_worlds

    assert main(["sim", "--list-worlds"]) == 0
    out = capsys.readouterr().out
    for name in builtin_worlds():
        assert name in out
    assert "gpt-4o-mini" in out  # the models of each world are listed
