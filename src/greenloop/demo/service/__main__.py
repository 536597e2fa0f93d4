"""Run the demo service: ``python -m greenloop.demo.service --state-dir D --port P ...``."""

from __future__ import annotations

import os
import select
import signal
import sys
import threading
import time

import uvicorn

from greenloop.demo import OWNER_ENV
from greenloop.demo.service.app import create_app
from greenloop.demo.service.config import from_args
from greenloop.demo.service.faults import FaultError
from greenloop.demo.service.tls import wrong_host_certificate


def die_with_owner(owner: str | None) -> None:
    """Stop this process (SIGTERM to itself) once the owner process has exited.

    So a service started by a `greenloop demo` killed with SIGKILL does not hold its
    port forever. A pidfd wakes the watcher exactly when the owner exits (no pid reuse).
    """
    if not owner or not owner.isdigit():
        return
    pid = int(owner)
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        sys.exit(0)  # the owner is already gone: nobody will ever stop us
    except (AttributeError, OSError):
        fd = None  # no pidfd here (old kernel, not Linux): poll instead

    def watch() -> None:
        if fd is not None:
            select.select([fd], [], [])
        else:
            while _alive(pid):
                time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="owner-watch", daemon=True).start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def main(argv: list[str] | None = None) -> int:
    """Parse flags, build the app and serve it until SIGTERM (or until its owner dies)."""
    die_with_owner(os.environ.get(OWNER_ENV))
    try:
        config = from_args(sys.argv[1:] if argv is None else argv, os.environ)
    except FaultError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    ssl: dict[str, str] = {}
    if config.tls_mismatch:  # the fault wins over the certificate the revision has
        cert, key = wrong_host_certificate(config.state_dir)
        ssl = {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
    elif config.tls_cert and config.tls_key:
        ssl = {"ssl_certfile": str(config.tls_cert), "ssl_keyfile": str(config.tls_key)}
    uvicorn.run(
        create_app(config),
        host=config.host,
        port=config.port,
        ws="websockets-sansio",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=2,
        **ssl,  # type: ignore[arg-type]
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
