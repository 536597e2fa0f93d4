"""The service's settings, from command-line flags and GREENLOOP_DEMO_* environment variables."""

from __future__ import annotations

import argparse
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from greenloop.demo.service.faults import Fault, parse_spec


@dataclass(frozen=True)
class ServiceConfig:
    """Everything one service process needs to know; immutable for the life of the process."""

    state_dir: Path
    port: int = 8080
    host: str = "127.0.0.1"
    revision: int = 1
    commit: str = "0000000"
    deployed_at: str = ""
    database_url: str = ""
    cache_url: str = ""
    cache_prefix: str = "greenloop-demo:"
    log_file: Path | None = None
    admin_token: str = ""
    jwt_secret: str = ""
    username: str = "demo"
    password: str = "demo-password"
    faults: tuple[Fault, ...] = ()  # runtime faults active from the start
    bugs: tuple[Fault, ...] = ()  # faults baked into this revision
    tls_mismatch: bool = False
    tls_cert: Path | None = None  # serve HTTPS with this certificate chain (PEM) ...
    tls_key: Path | None = None  # ... and this key

    @property
    def database(self) -> str:
        """The database URL, SQLite under the state dir by default."""
        return self.database_url or f"sqlite:///{self.state_dir / 'demo.sqlite3'}"

    @property
    def log_path(self) -> Path:
        """Where the JSON log goes."""
        return self.log_file or self.state_dir / "service.log"


def _secret(state_dir: Path, name: str) -> str:
    """A random secret kept in ``state_dir/name`` (0600) so restarts keep accepting tokens."""
    path = state_dir / name
    if path.exists():
        return path.read_text().strip()
    state_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(32)
    path.write_text(value)
    path.chmod(0o600)
    return value


def parser() -> argparse.ArgumentParser:
    """The command line of ``python -m greenloop.demo.service``."""
    p = argparse.ArgumentParser(prog="python -m greenloop.demo.service")
    p.add_argument("--state-dir", type=Path, required=True)
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--revision", type=int, default=1)
    p.add_argument("--commit", default="0000000")
    p.add_argument("--deployed-at", default="")
    p.add_argument("--database-url", default=None)
    p.add_argument("--cache-url", default=None)
    p.add_argument("--cache-prefix", default=None)
    p.add_argument("--log-file", type=Path, default=None)
    p.add_argument("--fault", action="append", default=[], metavar="NAME[:k=v,...]")
    p.add_argument("--bug", action="append", default=[], metavar="NAME[:k=v,...]")
    p.add_argument("--tls-mismatch", action="store_true")
    p.add_argument("--tls-cert", type=Path, default=None, help="serve HTTPS with this PEM chain")
    p.add_argument("--tls-key", type=Path, default=None)
    return p


def from_args(argv: Sequence[str], env: Mapping[str, str]) -> ServiceConfig:
    """Parse flags; environment variables fill what flags leave out. Raises FaultError."""
    a = parser().parse_args(list(argv))
    env_faults = [s for s in env.get("GREENLOOP_DEMO_FAULTS", "").split(";") if s.strip()]
    env_bugs = [s for s in env.get("GREENLOOP_DEMO_BUG", "").split(";") if s.strip()]
    faults = [parse_spec(s) for s in [*env_faults, *a.fault]]
    bugs = [parse_spec(s, source="revision") for s in [*env_bugs, *a.bug]]
    tls = a.tls_mismatch or any(f.name == "tls-mismatch" for f in [*faults, *bugs])
    state_dir: Path = a.state_dir.resolve()
    return ServiceConfig(
        state_dir=state_dir,
        port=a.port,
        host=a.host,
        revision=a.revision,
        commit=a.commit,
        deployed_at=a.deployed_at,
        database_url=a.database_url or env.get("GREENLOOP_DEMO_DATABASE_URL", ""),
        cache_url=a.cache_url or env.get("GREENLOOP_DEMO_CACHE_URL", ""),
        cache_prefix=a.cache_prefix or env.get("GREENLOOP_DEMO_CACHE_PREFIX", "greenloop-demo:"),
        log_file=a.log_file,
        admin_token=env.get("GREENLOOP_DEMO_ADMIN_TOKEN") or _secret(state_dir, "admin_token"),
        jwt_secret=env.get("GREENLOOP_DEMO_JWT_SECRET") or _secret(state_dir, "jwt_secret"),
        username=env.get("GREENLOOP_DEMO_USER", "demo"),
        password=env.get("GREENLOOP_DEMO_PASSWORD", "demo-password"),
        faults=tuple(faults),
        bugs=tuple(bugs),
        tls_mismatch=tls,
        tls_cert=a.tls_cert,
        tls_key=a.tls_key,
    )
