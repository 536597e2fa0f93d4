"""Command probe: run an argv list (never a shell string) and judge its exit code and output."""

from __future__ import annotations

import time

from pydantic import Field

from greenloop.probes.base import Observation, ProbeKind, ProbeOptions, json_or_none, ms
from greenloop.probes.conditions import Document
from greenloop.process import run_argv_async

OUTPUT_LIMIT = 64 * 1024


class CommandOptions(ProbeOptions):
    argv: list[str] = Field(min_length=1)
    cwd: str | None = None
    env: dict[str, str] = Field(default_factory=dict)  # added to the inherited environment


class CommandProbe(ProbeKind[CommandOptions]):
    name = "command"
    Options = CommandOptions
    variables = ("exit_code", "stdout", "stderr", "json", "latency_ms")
    default_conditions = ("exit_code == 0",)

    def target(self, options: CommandOptions) -> str:
        return " ".join(options.argv)

    async def check(self, options: CommandOptions, timeout_s: float) -> Observation:
        started = time.perf_counter()
        run = await run_argv_async(options.argv, cwd=options.cwd, env=options.env)
        if run.error:
            return Observation({}, run.error)
        latency = ms(time.perf_counter() - started)
        stdout = run.output[:OUTPUT_LIMIT]
        stderr = run.stderr[:OUTPUT_LIMIT]
        parsed = json_or_none(stdout)
        values = {
            "exit_code": run.exit_code,
            "stdout": Document(stdout, parsed),
            "stderr": stderr,
            "json": parsed,
            "latency_ms": latency,
        }
        last = (stderr.strip() or stdout.strip()).splitlines()[-1:] or [""]
        summary = f"exit code {run.exit_code} in {latency:.0f} ms"
        if run.exit_code and last[0]:
            summary += f": {last[0][:200]}"
        return Observation(values, summary)
