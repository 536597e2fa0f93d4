"""Which `execution.python` is greenloop's own interpreter (execute/interpreter.py).

Real files and links: a virtualenv's python and python3 are one interpreter; two
virtualenvs whose pythons link to the same base interpreter are not. Source: the
redis-py field trial (`execution.python = "venv/bin/python"`, greenloop run by
venv/bin/python3), which greenloop took for a foreign interpreter.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from greenloop.execute import interpreter
from greenloop.execute.interpreter import check_python, interpreter_for, same_interpreter


def venv(root: Path, name: str) -> Path:
    bin_dir = root / name / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python3").symlink_to(sys.executable)
    (bin_dir / "python").symlink_to("python3")
    return bin_dir


def test_one_folders_names_for_one_interpreter_are_the_same(tmp_path: Path) -> None:
    a, b = venv(tmp_path, "a"), venv(tmp_path, "b")
    assert same_interpreter(str(a / "python"), str(a / "python3"))
    assert same_interpreter(str(a / "python"), str(a / ".." / "bin" / "python"))
    assert not same_interpreter(str(a / "python"), str(b / "python"))  # two environments
    assert not same_interpreter(str(a / "python"), str(tmp_path / "missing" / "python"))


def test_greenloops_own_interpreter_by_another_name_is_not_probed(
    tmp_path: Path, make_config, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = Path(sys.executable).parent
    other = next(
        (
            bin_dir / n
            for n in ("python", "python3", f"python3.{sys.version_info.minor}")
            if (bin_dir / n).exists()
            and (bin_dir / n).name != Path(sys.executable).name
            and os.path.realpath(bin_dir / n) == os.path.realpath(sys.executable)
        ),
        None,
    )
    if other is None:
        pytest.skip("this interpreter has no second name in its folder")

    def no_subprocess(path: str) -> tuple[bool, bool, bool]:
        raise AssertionError(f"probed {path} as if it were another interpreter")

    monkeypatch.setattr(interpreter, "capabilities", no_subprocess)
    config = make_config(execution={"python": str(other)})
    check_python(config, "greenloop.toml")
    assert interpreter_for(config, tmp_path).own
