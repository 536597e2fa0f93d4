"""Log sources (file, command, Loki) and Drain3 templates."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest
from triage_helpers import T0

from greenloop.config import LogSourceConfig
from greenloop.errors import ConfigError
from greenloop.triage.logs import open_source, read_logs
from greenloop.triage.logs.templates import mine_templates

START, END = T0 - timedelta(minutes=5), T0 + timedelta(minutes=5)


def source(tmp_path: Path, **options: object):
    return open_source(LogSourceConfig.model_validate(options), tmp_path)


def test_file_source_reads_json_and_text_and_counts_malformed_lines(tmp_path: Path) -> None:
    lines = [
        json.dumps(
            {
                "ts": "2025-03-01T12:00:01.250Z",
                "level": "error",
                "request_id": "req-42",
                "message": "POST /threads/1/messages 500",
                "traceback": "Traceback ...\nKeyError: 'author'",
            }
        ),
        '{"ts": "2025-03-01T12:00:02Z", "level": "info", "mess',  # torn line
        "2025-03-01 12:00:03,120 ERROR upstream cache refused request_id=req-43",
        "Traceback (most recent call last):",
        "ConnectionRefusedError: [Errno 111] Connection refused",
        json.dumps({"ts": "2025-03-01T13:00:00Z", "level": "error", "message": "outside window"}),
        "garbage before any timestamp",
    ]
    (tmp_path / "svc.log").write_text("\n".join(lines[-1:] + lines[:-1]) + "\n")
    batch = source(tmp_path, name="svc", kind="file", path="svc.log").read(START, END)
    assert batch.malformed == 2
    assert [r.request_id for r in batch.records] == ["req-42", "req-43"]
    assert batch.records[0].traceback.endswith("KeyError: 'author'")
    assert batch.records[1].level == "ERROR" and "Errno 111" in batch.records[1].traceback


def test_command_source_runs_argv_and_reads_a_gcloud_style_array(tmp_path: Path) -> None:
    entries = [
        {
            "timestamp": "2025-03-01T12:00:01.123456789Z",
            "severity": "ERROR",
            "jsonPayload": {"message": "HTTP 503 from cache", "request_id": "r-1"},
        },
        {
            "timestamp": "2025-03-01T12:00:02Z",
            "severity": "ERROR",
            "textPayload": "HTTP 503 from cache",
        },
        {"timestamp": "2025-03-01T12:00:03Z"},  # no message: malformed
    ]
    script = f"import json,sys; print(json.dumps({entries!r})); print(sys.argv[1], file=sys.stderr)"
    cmd = source(
        tmp_path,
        name="gcloud",
        kind="command",
        argv=[sys.executable, "-c", script, "--since={start}"],
    )
    batch = cmd.read(START, END)
    assert (len(batch.records), batch.malformed, batch.error) == (2, 1, "")
    assert batch.records[0].request_id == "r-1" and batch.records[0].ts.microsecond == 123456


def test_a_failing_command_is_reported_not_raised(tmp_path: Path) -> None:
    cmd = source(
        tmp_path,
        name="bad",
        kind="command",
        argv=[sys.executable, "-c", "import sys; sys.exit('no credentials')"],
    )
    assert "exited 1" in cmd.read(START, END).error


class _Loki(BaseHTTPRequestHandler):
    queries: ClassVar[list[dict[str, list[str]]]] = []

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path != "/loki/api/v1/query_range":
            self.send_error(404)
            return
        self.queries.append(parse_qs(url.query))
        ns = int(T0.timestamp() * 1e9)
        body = {
            "status": "success",
            "data": {
                "resultType": "streams",
                "result": [
                    {
                        "stream": {"app": "api", "level": "error"},
                        "values": [
                            [str(ns), "upstream returned HTTP 503 request_id=r-9"],
                            [
                                str(ns + 10**9),
                                json.dumps(
                                    {
                                        "level": "error",
                                        "message": "KeyError 'author'",
                                        "request_id": "r-10",
                                    }
                                ),
                            ],
                            ["not-a-number", "x"],
                        ],
                    },
                ],
                "stats": {},
            },
        }
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def loki() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Loki)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_loki_source_speaks_query_range(tmp_path: Path, loki: str) -> None:
    (batch,) = read_logs(
        [
            LogSourceConfig.model_validate(
                {"name": "loki", "kind": "loki", "url": loki, "query": '{app="api"} |= "error"'}
            )
        ],
        START,
        END,
        base_dir=tmp_path,
    )
    query = _Loki.queries[-1]
    assert query["query"] == ['{app="api"} |= "error"']
    assert int(query["start"][0]) == int(START.timestamp() * 1e9)
    assert batch.malformed == 1
    assert [(r.level, r.request_id) for r in batch.records] == [("ERROR", "r-9"), ("ERROR", "r-10")]
    assert batch.records[0].ts == T0


def test_unreachable_loki_is_a_warning(tmp_path: Path, free_port: int) -> None:
    loki = source(
        tmp_path, name="loki", kind="loki", url=f"http://127.0.0.1:{free_port}", query="{a=1}"
    )
    assert "ConnectError" in loki.read(START, END).error


def test_unknown_kind_and_bad_options_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown log source kind 'syslog'"):
        source(tmp_path, name="x", kind="syslog")
    with pytest.raises(ConfigError, match=r"triage.logs\[x\].path"):
        source(tmp_path, name="x", kind="file")


def test_drain_turns_a_burst_into_one_counted_template() -> None:
    from greenloop.triage.logs.base import LogRecord

    records = [
        LogRecord(
            T0 + timedelta(minutes=4 * i),
            "ERROR",
            f"GET /threads/{i}/messages upstream returned HTTP 503 in {100 + i} ms "
            f"request_id=3f2b1c9e-1d2a-4c1b-9a7e-0b1c2d3e4f{i:02d}",
        )
        for i in range(14)
    ] + [LogRecord(T0, "INFO", "user 7 logged in")]
    top = mine_templates(records, top=5, errors_only=True)
    assert len(top) == 1 and top[0].count == 14
    assert "HTTP 503" in top[0].template and top[0].line().startswith("14 x ERROR")


def test_structured_access_lines_group_by_request_status_and_error() -> None:
    from greenloop.triage.logs.base import LogRecord
    from greenloop.triage.logs.templates import mine_templates

    def line(thread: str, status: int, error: str = "") -> LogRecord:
        return LogRecord(
            None,
            "error",
            "request",
            method="POST",
            path=f"/threads/{thread}/messages",
            status=status,
            error=error,
        )

    records = [
        line(f"6f1c2d3e-0000-4000-8000-00000000000{i}", 500, "KeyError: 'author_id'")
        for i in range(4)
    ] + [line("6f1c2d3e-0000-4000-8000-000000000009", 404)]
    templates = mine_templates(records)
    assert [(t.count, t.template) for t in templates] == [
        (4, "request POST /threads/<UUID>/messages -> 500 KeyError: 'author_id'"),
        (1, "request POST /threads/<UUID>/messages -> 404"),
    ]
