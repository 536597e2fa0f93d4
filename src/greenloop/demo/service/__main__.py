"""Run the demo service: ``python -m greenloop.demo.service --state-dir D --port P ...``."""

from __future__ import annotations

import os
import sys

import uvicorn

from greenloop.demo.service.app import create_app
from greenloop.demo.service.config import from_args
from greenloop.demo.service.faults import FaultError
from greenloop.demo.service.tls import wrong_host_certificate


def main(argv: list[str] | None = None) -> int:
    """Parse flags, build the app and serve it until SIGTERM."""
    try:
        config = from_args(sys.argv[1:] if argv is None else argv, os.environ)
    except FaultError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    ssl: dict[str, str] = {}
    if config.tls_mismatch:
        cert, key = wrong_host_certificate(config.state_dir)
        ssl = {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
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
