"""A tracker that answers and then drips its body byte by byte cannot hang a run.

A real local HTTP server sends `200 OK` with a long Content-Length, then one byte at a
time; per-read timeouts never fire on it. The whole exchange must still end within the
tracker's deadline, the operation stay queued, and the store stay writable meanwhile.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes import TOKEN
from tracker_samples import make_cluster, make_config

from greenloop.records import IssueAction, Verdict
from greenloop.store import Store
from greenloop.trackers.filing import file_issues, sync_outbox

DRIP_BYTES = 400  # at DRIP_EVERY_S a byte: 40 s, far past the tracker's 1 s deadline
DRIP_EVERY_S = 0.1


class Dripper:
    """Answers every request with headers at once, then the body one byte at a time."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.finished_bodies = 0
        self.stopping = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {DRIP_BYTES}\r\n\r\n".encode()
                )
                for _ in range(DRIP_BYTES):
                    if self.stopping.is_set():
                        return
                    conn.sendall(b" ")
                    time.sleep(DRIP_EVERY_S)
                self.finished_bodies += 1
            except OSError:
                return

    def close(self) -> None:
        self.stopping.set()
        self.sock.close()


@pytest.fixture
def dripper() -> Iterator[Dripper]:
    server = Dripper()
    yield server
    server.close()


WRITE = (
    "import sys\n"
    "from greenloop.store import Store\n"
    "s = Store.open(sys.argv[1])\n"
    "s.runs.start_run('concurrent', environment='e', focus='all', command_line='',\n"
    "    config_path='c')\n"
    "s.close()\n"
)


def test_a_dripping_tracker_is_cut_at_its_deadline_and_never_locks_the_store(
    tmp_path: Path,
    sqlite_store: Store,
    monkeypatch: pytest.MonkeyPatch,
    dripper: Dripper,
) -> None:
    monkeypatch.setenv("GL_TEST_TRACKER_TOKEN", TOKEN)
    config = make_config(
        tmp_path,
        kind="github",
        repo="acme/shop",
        api_url=f"http://127.0.0.1:{dripper.port}",
        token_env="GL_TEST_TRACKER_TOKEN",
        timeout_s=1,
    )
    writer: list[subprocess.CompletedProcess[str]] = []

    def write_meanwhile() -> None:
        # Another greenloop writing to the same SQLite store while delivery drips.
        url = str(sqlite_store.engine.url)
        writer.append(
            subprocess.run(
                [sys.executable, "-c", WRITE, url], capture_output=True, text=True, timeout=120
            )
        )

    thread = threading.Thread(target=write_meanwhile)
    thread.start()
    [ref] = file_issues(
        [make_cluster()],
        config=config,
        store=sqlite_store,
        run_id="run-1",
        verdict=Verdict.FAILING,
        out_dir=tmp_path / "out",
    )
    result = sync_outbox(config, sqlite_store, tmp_path / "out")
    thread.join(timeout=120)
    assert ref.action is IssueAction.QUEUED
    assert result.pending == 1 and "no reply" in (result.error or ""), result
    assert dripper.finished_bodies == 0, "the call waited for the whole drip"
    assert writer and writer[0].returncode == 0, writer[0].stderr if writer else "no writer"
    assert sqlite_store.runs.run("concurrent") is not None


def test_every_outgoing_call_has_the_same_total_deadline(tmp_path: Path, dripper: Dripper) -> None:
    """The deploy stage's version read and a Loki log source against the same dripper."""
    from datetime import UTC, datetime, timedelta

    from greenloop.config import Config, LogSourceConfig
    from greenloop.deploy import read_revision_detail
    from greenloop.triage.logs import open_source

    url = f"http://127.0.0.1:{dripper.port}"
    config = Config.model_validate(
        {"deploy": {"version_url": f"{url}/version"}, "source": tmp_path / "greenloop.toml"}
    )
    reading = read_revision_detail(config, timeout_s=1)
    assert reading.revision is None and reading.problem, reading
    loki = open_source(
        LogSourceConfig(name="loki", kind="loki", url=url, query='{app="x"}', timeout_s=1),
        tmp_path,
    )
    now = datetime.now(UTC)
    batch = loki.read(now - timedelta(minutes=1), now)
    assert batch.error and not batch.records, batch
    assert dripper.finished_bodies == 0, "a call waited for the whole drip"
