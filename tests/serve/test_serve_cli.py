"""`greenloop serve` and `greenloop report --html` as users meet them: files, exit codes, errors."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from dashboard_seed import SECRET, seed_history

from greenloop.cli import main
from greenloop.store import Store, store_url


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "greenloop.toml"
    path.write_text('[environment]\nname = "staging"\nbase_url = "http://127.0.0.1:9"\n')
    return path


def test_report_html_writes_one_redacted_file(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = Store.open(store_url(None, tmp_path))
    ids = seed_history(store, 5)
    store.close()
    target = tmp_path / "out" / "run.html"
    assert main(["report", ids[3], "-c", str(config), "--html", str(target)]) == 0
    assert f"wrote {target}" in capsys.readouterr().out
    text = target.read_text(encoding="utf-8")
    assert text.startswith("<!doctype html>") and ids[3] in text
    assert "<style>" in text and "<svg" in text and "<script" not in text
    assert SECRET not in text and "--token ***" in text


def test_report_html_of_an_unknown_run_is_a_user_error(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "run.html"
    assert main(["report", "nope", "-c", str(config), "--html", str(target)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["greenloop: run nope: not in the store (see `greenloop history`)"]
    assert not target.exists()


def test_serve_on_a_port_in_use_is_one_line_exit_2(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert main(["serve", "-c", str(config), "--port", str(port)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"--port {port}: cannot listen" in err[0]
