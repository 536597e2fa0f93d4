"""`greenloop demo`: start the demo service with a scenario's faults, then run the real loop.

The demo writes an ordinary greenloop.toml into the out folder and runs exactly
what `greenloop run -c <that file>` runs, so nothing here is demo-only logic.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined
from rich.console import Console

from greenloop.config import Config
from greenloop.demo import OWNER_ENV, control, realdeps
from greenloop.demo.realdeps import RealEnvironment
from greenloop.demo.scenarios import REAL_DEPS_SCENARIOS, SCENARIOS, Scenario, prepare
from greenloop.errors import UserError
from greenloop.load import load_config
from greenloop.records import ExitCode

DEMO_DIR = Path(__file__).parent
PASSWORD_ENV = "GREENLOOP_DEMO_DB_PASSWORD"


def list_lines(real_deps: bool = False) -> list[str]:
    table = REAL_DEPS_SCENARIOS if real_deps else SCENARIOS
    return [f"{s.name:17} exit {s.expected_exit}  {s.description}" for s in table.values()]


def scenario_named(name: str, real_deps: bool = False) -> Scenario:
    table = REAL_DEPS_SCENARIOS if real_deps else SCENARIOS
    if name not in table:
        if name in REAL_DEPS_SCENARIOS:
            raise UserError(f"--scenario {name}: needs real processes; add --real-deps")
        known = ", ".join(table)
        raise UserError(f"--scenario {name}: unknown scenario (expected one of: {known})")
    return table[name]


def write_demo_config(
    scenario: Scenario,
    out_dir: Path,
    state_dir: Path,
    base_url: str,
    deploy_args: Sequence[str] = (),
    real: RealEnvironment | None = None,
) -> Path:
    """Render the demo's greenloop.toml for a running service; its path. With `real`, the
    database and cache are probed directly and the service's CA is trusted."""
    port = int(base_url.rsplit(":", 1)[1].split("/", 1)[0])
    tls = base_url.startswith("https")
    ws_url = ("wss" if tls else "ws") + "://" + base_url.split("://", 1)[1] + "/ws"
    suite = DEMO_DIR / scenario.suite
    ctl = [sys.executable, "-m", "greenloop.demo.control", "--state-dir", str(state_dir)]
    env = Environment(
        loader=PackageLoader("greenloop.demo", "templates"),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )
    path = out_dir / "greenloop.toml"
    text = env.get_template("greenloop.toml.j2").render(
        scenario=scenario,
        config_path=path,
        base_url=base_url,
        ws_url=ws_url,
        port=port,
        tls=tls,
        ca_file=real.certs.ca_file.as_posix() if real else None,
        real=(
            {
                # The password stays out of the file: interpolated from the environment.
                "database_dsn": real.database_url(scenario.database_host).replace(
                    f":{real.database_password}@", f":${{{PASSWORD_ENV}}}@"
                ),
                "cache_url": real.deps.redis.url,
            }
            if real
            else None
        ),
        suite_dir=suite.as_posix(),
        out_dir=out_dir,
        workers=1,
        reruns=1,
        log_file=(state_dir / "service.log").as_posix(),
        deploy_command=_toml_list([*ctl, "deploy", *deploy_args]),
        rollback_command=_toml_list([*ctl, "rollback"]),
        restart_cache=_toml_list([*ctl, "restart-dependency", "cache"]),
        restart_database=_toml_list([*ctl, "restart-dependency", "database"]),
    )
    path.write_text(text, encoding="utf-8")
    return path


def _toml_list(argv: list[str]) -> str:
    # JSON string arrays are valid TOML arrays.
    return json.dumps(argv)


def run_demo(
    name: str,
    *,
    out_dir: Path,
    json_path: Path | None,
    until_green: bool,
    allow_remediation: bool,
    max_iterations: int | None,
    command_line: str,
    console: Console,
    real_deps: bool = False,
) -> ExitCode:
    """Prepare the scenario, run the loop against it, stop the service; the loop's exit code."""
    from greenloop.session import RunOptions, execute_run

    scenario = scenario_named(name, real_deps)
    # Every service started from here on (also by deploy and restart commands, which
    # inherit the environment) stops when this process dies, even by SIGKILL.
    os.environ.setdefault(OWNER_ENV, str(os.getpid()))
    real: RealEnvironment | None = None
    if real_deps:
        absent = realdeps.missing()
        if absent:
            raise UserError(
                "--real-deps: " + "; ".join(absent) + " (without --real-deps the demo runs "
                "on SQLite and an in-process cache)"
            )
    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    state_dir = out_dir / "service"
    console.print(
        f"[bold]greenloop demo[/]: scenario [bold]{scenario.name}[/]: {scenario.description}"
    )
    staged, deploy_args = scenario, []
    if scenario.bug and scenario.previous_good:
        # The loop itself deploys the bad revision, as a team's pipeline would: the deploy
        # stage then knows the revision before and after, and triage can cite the change.
        staged, deploy_args = (
            replace(scenario, bug=None, previous_good=False),
            ["--bug", scenario.bug],
        )
    saved_env = {k: os.environ.get(k) for k in (PASSWORD_ENV, "SSL_CERT_FILE")}
    try:
        if real_deps:
            real = _start_real(scenario, out_dir, console)
            # greenloop itself (deploy's revision check, probes) trusts the demo's CA too.
            os.environ[PASSWORD_ENV] = real.database_password
            os.environ["SSL_CERT_FILE"] = str(real.certs.ca_file)
            base_url = prepare(
                staged,
                state_dir,
                database_url=real.database_url(scenario.database_host),
                cache_url=real.deps.redis.url,
                tls_cert=str(real.certs.paths(scenario.certificate)[0]),
                tls_key=str(real.certs.paths(scenario.certificate)[1]),
            )
            if scenario.real_fault:
                console.print(f"fault on the real processes: {scenario.real_fault}")
                real.break_it(scenario.real_fault, state_dir)
        else:
            base_url = prepare(staged, state_dir)
        config_path = write_demo_config(
            scenario, out_dir, state_dir, base_url, deploy_args, real=real
        )
        config: Config = load_config(config_path)
        console.print(f"demo service at {base_url}; config {config_path}", markup=False)
        options = RunOptions(
            out_dir=out_dir,
            json_path=json_path,
            until_green=until_green,
            max_iterations=max_iterations,
            allow_remediation=allow_remediation,
            force_deploy=bool(deploy_args),
            command_line=command_line
            or shlex.join(
                ["greenloop", "demo", *(["--real-deps"] if real_deps else []), "--scenario", name]
            ),
        )
        result = execute_run(config, options, console)
    finally:
        control.stop(state_dir)
        if real is not None:
            real.close()
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    console.print(f"dashboard: greenloop serve -c {shlex.quote(str(config_path))}")
    return result.exit_code


def _start_real(scenario: Scenario, out_dir: Path, console: Console) -> RealEnvironment:
    """Start the throwaway PostgreSQL and Redis, and say where they run."""
    try:
        real = RealEnvironment.start(out_dir / "real-deps")
    except realdeps.RealDepsError as exc:
        raise UserError(f"--real-deps: {exc}") from None
    pg, cache = real.deps.postgres, real.deps.redis
    console.print(
        f"real dependencies: PostgreSQL on 127.0.0.1:{pg.port} ({pg.folder}), "
        f"redis-server on 127.0.0.1:{cache.port}, HTTPS with the demo CA {real.certs.ca_file}"
        f" (certificate: {scenario.certificate})",
        markup=False,
    )
    return real
