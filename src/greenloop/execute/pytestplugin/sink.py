"""The event sink: one JSON line per event, appended to the events file."""

from __future__ import annotations

import json
import os
import threading
from typing import Any


class EventSink:
    """Appends one JSON line per event; each line is one write() so writers never interleave."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self.lock = threading.Lock()

    def emit(self, event: str, **fields: Any) -> None:
        fields["event"] = event
        line = json.dumps(fields, default=str, ensure_ascii=False) + "\n"
        with self.lock:
            os.write(self.fd, line.encode("utf-8", "replace"))

    def close(self) -> None:
        os.close(self.fd)
