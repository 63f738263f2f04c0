"""One format for every error (issue #10, items 10 and 11): one ``Error:`` line, exit 2 for the
user's mistakes and 1 for the world's, no traceback unless ``--debug``/``ZOO_DEBUG=1``."""

from __future__ import annotations

import errno
import os
import re
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner

import zoo.api
import zoo.registry.catalog
from zoo.cli import cli

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str, **env: str):
    zoo.api.reset()
    return CliRunner().invoke(cli, list(args), env=env or None)


def one_error_line(result) -> str:
    """The single line on stderr, asserting there is exactly one and no traceback anywhere."""
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    return lines[0]


# -- usage errors: exit 2, one line, no usage block -------------------------------------------------


@pytest.mark.parametrize("args, expected", [
    (["info"], "Error: Missing argument 'NAME'. (see zoo info --help)"),
    (["--bogus"], "Error: No such option '--bogus'. (see zoo --help)"),
    (["list", "--installed=maybe"], None),
    (["bench", "deit-t", "--batch-size", "many"], None),
    (["no-such-command"], None),
    (["cache", "rm", "--bogus"], None),
    (["info", "fastervit-22"], "Error: unknown model 'fastervit-22'. Did you mean: fastervit-2"),
])
def test_usage_errors_are_one_line_and_exit_2(args, expected):
    result = run(*args)
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    assert "Usage:" not in result.output and "Try " not in result.output
    if expected is not None:
        assert line.startswith(expected)


def test_click_usage_errors_point_at_the_commands_help():
    line = one_error_line(run("bench", "deit-t", "--batch-size", "many"))
    assert line.startswith("Error: Invalid value for '--batch-size'") and line.endswith("(see zoo bench --help)")
    assert one_error_line(run("cache", "rm", "--bogus")).endswith("(see zoo cache rm --help)")


def test_bare_zoo_still_prints_its_help():
    result = run()
    assert result.exit_code == 2 and "Commands:" in result.output and "Error" not in result.output


# -- unexpected exceptions: one line, exit 1; --debug shows the traceback --------------------------


def _boom(*args, **kwargs):
    raise ValueError("the catalog fell over\nwith a second line")


def test_internal_error_is_one_line_naming_the_command(monkeypatch):
    monkeypatch.setattr(zoo.registry.catalog.Catalog, "select", _boom)
    result = run("list")
    assert result.exit_code == 1
    assert one_error_line(result) == ("Error: internal error in zoo list: ValueError: the catalog fell over "
                                      "(rerun with --debug for the traceback)")


@pytest.mark.parametrize("debug", [["--debug"], "env"])
def test_debug_shows_the_traceback(monkeypatch, debug):
    monkeypatch.setattr(zoo.registry.catalog.Catalog, "select", _boom)
    result = run("list", ZOO_DEBUG="1") if debug == "env" else run(*debug, "list")
    assert result.exit_code == 1
    assert "Traceback (most recent call last)" in result.stderr and "with a second line" in result.stderr
    assert result.stderr.strip().splitlines()[-1] == "Error: internal error in zoo list: ValueError: the catalog fell over"


def test_internal_error_in_a_sub_command_names_it(monkeypatch):
    import zoo.devkit.scaffold

    monkeypatch.setattr(zoo.devkit.scaffold, "new_plugin", _boom)
    result = run("plugin", "new", "acme")
    assert result.exit_code == 1
    assert one_error_line(result).startswith("Error: internal error in zoo plugin new: ValueError: the catalog fell over")


def test_ctrl_c_is_one_line_and_exit_130(monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(zoo.registry.catalog.Catalog, "select", interrupted)
    result = run("list")
    assert result.exit_code == 130
    assert result.stderr.strip() == "Aborted!" and "Traceback" not in result.output


def test_real_process_has_no_traceback_and_one_line():
    """The installed entry point, in its own process, not only CliRunner."""
    out = subprocess.run([sys.executable, "-m", "zoo", "eval", "deit-t", "--dataset", "folder:/nonexistent",
                          "--no-pretrained", "--patch", "tome:zz=1"], capture_output=True, text=True,
                         env={**os.environ, "ZOO_PLUGINS": "tome,timm-baselines"})
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines() == [
        "Error: patch 'tome' (plugin 'tome') does not take the option 'zz' (accepted: r, prop_attn, trace_source)"
    ]


def test_every_error_line_in_the_source_starts_with_capital_error():
    """One format: click's "Error: ...". A lower-case "error:" echo anywhere in zoo/ is a regression."""
    offenders = []
    for path in (ROOT / "zoo").rglob("*.py"):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"""(echo|secho|print)\(f?["']error:""", line):
                offenders.append(f"{path.relative_to(ROOT)}:{n}")
    assert offenders == []


# -- ZOO_HOME: a file, read-only, full -------------------------------------------------------------


def _writes_here(path: Path) -> bool:
    try:
        (path / ".probe").mkdir()
    except OSError:
        return False
    (path / ".probe").rmdir()
    return True


@contextmanager
def read_only(path: Path):
    """Make ``path`` read-only for this process: chmod, or for root (which ignores modes) chattr +i."""
    path.chmod(0o555)
    immutable = False
    try:
        if _writes_here(path) and shutil.which("chattr"):
            immutable = subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode == 0
        if _writes_here(path):
            pytest.skip("cannot make a read-only directory on this machine (root without chattr)")
        yield path
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        path.chmod(0o755)


def test_zoo_home_that_is_a_file(tmp_path, monkeypatch):
    home = tmp_path / "not-a-dir"
    home.write_text("x")
    monkeypatch.setenv("ZOO_HOME", str(home))
    result = run("list", "deit-*", "--json")
    assert result.exit_code == 0 and "deit-t" in result.stdout  # reading needs no home
    assert run("info", "deit-t").exit_code == 0
    result = run("cache", "add", "deit-t", str(tmp_path / "missing.safetensors"))
    assert result.exit_code == 2
    weights = tmp_path / "w.safetensors"
    _safetensors(weights)
    result = run("cache", "add", "deit-t", str(weights))
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    assert line.startswith(f"Error: ZOO_HOME {home} is not a directory (it or a parent is a file)")
    assert line.endswith("set ZOO_HOME to a writable directory")
    assert home.read_text() == "x"


def test_read_only_zoo_home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("ZOO_HOME", str(home))
    weights = tmp_path / "w.safetensors"
    _safetensors(weights)
    with read_only(home):
        result = run("list", "deit-*", "--json")
        assert result.exit_code == 0 and "deit-t" in result.stdout, result.output
        assert run("plugins").exit_code == 0
        result = run("cache", "add", "deit-t", str(weights))
        assert result.exit_code == 2, result.output
        line = one_error_line(result)
        assert line.startswith(f"Error: ZOO_HOME {home} is ")
        assert "read-only" in line or "not writable" in line
    assert list(home.iterdir()) == []


def test_full_disk_under_zoo_home_is_named(monkeypatch, tmp_path):
    """ENOSPC from any write under ZOO_HOME (injected: a full disk cannot be made without root)."""
    home = tmp_path / "home"
    monkeypatch.setenv("ZOO_HOME", str(home))
    target = home / "weights" / "deit-t" / "x.safetensors"

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(target))

    monkeypatch.setattr(zoo.registry.catalog.Catalog, "select", full)
    result = run("list")
    assert result.exit_code == 2
    assert one_error_line(result) == (f"Error: ZOO_HOME {home} is on a full disk (no space left on device) "
                                      f"(at {target}); free some space or set ZOO_HOME elsewhere")


def test_os_error_outside_zoo_home_is_not_blamed_on_it(monkeypatch, tmp_path):
    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", "/etc/elsewhere")

    monkeypatch.setattr(zoo.registry.catalog.Catalog, "select", denied)
    line = one_error_line(run("list"))
    assert line.startswith("Error: internal error in zoo list: PermissionError: [Errno 13] Permission denied")
    assert "ZOO_HOME" not in line


def _safetensors(path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    save_file({"weight": torch.zeros(2)}, str(path))


# -- names are canonical ---------------------------------------------------------------------------


def test_model_names_are_canonical_in_any_case():
    card = zoo.api.get_card("EfficientMod-XXS")
    assert card.name == "efficientmod-xxs" and zoo.api.get_card(" DeiT-T ").name == "deit-t"
    result = run("info", "EfficientMod-XXS", "--json")
    assert result.exit_code == 0 and '"name": "efficientmod-xxs"' in result.stdout


def test_a_library_warning_shown_with_file_and_line_is_printed_not_a_crash(capsys):
    """warnings.showwarning is called with (message, category, filename, lineno, file, line); passing all six
    on to formatwarning raised TypeError inside `zoo demo-data --task instance-segmentation`."""
    import io

    from zoo.cli import _show_warning

    _show_warning(UserWarning("a library speaks"), UserWarning, "lib.py", 7, None, "x = 1")
    assert capsys.readouterr().err == "lib.py:7: UserWarning: a library speaks\n  x = 1\n"
    out = io.StringIO()
    _show_warning(UserWarning("to a file"), UserWarning, "lib.py", 8, out)
    assert out.getvalue().startswith("lib.py:8: UserWarning: to a file\n")
