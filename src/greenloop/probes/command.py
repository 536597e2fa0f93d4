"""Command probe: run an argv list (never a shell string) and judge its exit code and output."""

from __future__ import annotations

import asyncio
import os
import time

from pydantic import Field

from greenloop.probes.base import Observation, ProbeKind, ProbeOptions, json_or_none, ms
from greenloop.probes.conditions import Document

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
        try:
            process = await asyncio.create_subprocess_exec(
                *options.argv,
                cwd=options.cwd,
                env={**os.environ, **options.env},
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except FileNotFoundError:
            return Observation({}, f"command not found: {options.argv[0]}")
        except PermissionError:
            return Observation({}, f"command not executable: {options.argv[0]}")
        try:
            out, err = await process.communicate()
        except asyncio.CancelledError:
            # The probe timed out: leave no process behind.
            process.kill()
            await process.wait()
            raise
        latency = ms(time.perf_counter() - started)
        stdout = out[:OUTPUT_LIMIT].decode("utf-8", "replace")
        stderr = err[:OUTPUT_LIMIT].decode("utf-8", "replace")
        parsed = json_or_none(stdout)
        values = {
            "exit_code": process.returncode,
            "stdout": Document(stdout, parsed),
            "stderr": stderr,
            "json": parsed,
            "latency_ms": latency,
        }
        last = (stderr.strip() or stdout.strip()).splitlines()[-1:] or [""]
        summary = f"exit code {process.returncode} in {latency:.0f} ms"
        if process.returncode and last[0]:
            summary += f": {last[0][:200]}"
        return Observation(values, summary)
