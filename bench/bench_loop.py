"""Orchestration overhead on a healthy demo run versus plain pytest on the same tests.

    .venv/bin/python bench/bench_loop.py [--rounds N]

Starts the real demo service (healthy), renders the demo's greenloop.toml and
measures, interleaved, median of N rounds:

1. plain `python -m pytest <demo suite>`: what a person runs by hand;
2. greenloop's execution of the same tests in one phase (`run_phase`, in
   process): the engine's overhead (plugin, events, authenticity data);
3. `greenloop run -c <demo config>` as a whole process: start-up, gate, the
   demo's three progressive phases, verify, triage, worklog, JSON, issues.

Prints each time and the ratios to plain pytest. Copy the figures into
docs/benchmarks.md ("Orchestration overhead").
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from greenloop.config import PhaseConfig
from greenloop.demo import control
from greenloop.demo.runner import write_demo_config
from greenloop.demo.scenarios import SCENARIOS, prepare
from greenloop.execute import run_phase, select_tests
from greenloop.index import load_index
from greenloop.load import load_config
from greenloop.records import Outcome


def timed(fn: object) -> float:
    start = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    scenario = SCENARIOS["healthy"]
    with tempfile.TemporaryDirectory(prefix="greenloop-bench-") as tmp:
        out = Path(tmp)
        state = out / "service"
        base_url = prepare(scenario, state)
        try:
            config_path = write_demo_config(scenario, out, state, base_url)
            config = load_config(config_path)
            suite = scenario.suite_path
            env = {**os.environ, "GREENLOOP_BASE_URL": base_url, **config.environment.env}
            index = load_index(config)
            one_phase = PhaseConfig(name="all")

            def plain() -> None:
                subprocess.run(
                    [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(suite)],
                    env=env,
                    check=True,
                    capture_output=True,
                )

            def engine() -> None:
                selection = select_tests(config, one_phase, index)
                result = run_phase(config, one_phase, selection)
                assert all(t.outcome is Outcome.PASSED for t in result.tests), result.note

            def whole_loop() -> None:
                subprocess.run(
                    [sys.executable, "-m", "greenloop.cli", "run", "-c", str(config_path)],
                    check=True,
                    capture_output=True,
                    cwd=out,
                )

            times: dict[str, list[float]] = {"plain": [], "engine": [], "loop": []}
            for _ in range(args.rounds):
                times["plain"].append(timed(plain))
                times["engine"].append(timed(engine))
                times["loop"].append(timed(whole_loop))
        finally:
            control.stop(state)
    median = {k: statistics.median(v) for k, v in times.items()}
    tests = len(list(index))
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPU(s), load {os.getloadavg()[0]:.2f}"
    )
    print(
        f"demo suite ({tests} indexed files, 40 tests), median of {args.rounds} interleaved rounds"
    )
    print(f"  plain pytest                     {median['plain']:6.2f} s")
    print(
        f"  greenloop run_phase (one phase)  {median['engine']:6.2f} s   "
        f"{median['engine'] / median['plain']:.2f}x   (target <= 1.10x, aim 1.05x)"
    )
    print(
        f"  greenloop run (whole loop, CLI)  {median['loop']:6.2f} s   "
        f"{median['loop'] / median['plain']:.2f}x"
    )


if __name__ == "__main__":
    main()
