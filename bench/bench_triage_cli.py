"""`greenloop triage FILE.xml --json out.json` as a whole process, over N failures.

    .venv/bin/python bench/bench_triage_cli.py [--failures 100000] [--inputs unique,varied,copies]
        [--before REV] [--sizes 10000,50000] [--before-failures 2000,4000,8000]
        [--before-timeout 300]

Writes a pytest-style JUnit file of N failing test cases and times `greenloop triage` on
it, for two inputs (three with `copies`). `unique`: every failure text different (texts
from the labelled set in tests/data plus live-captured shapes, each with its own ports,
ids, UUID, line numbers and test name, spread over 40 test files of an index): the worst
case, nothing repeats.
`copies` (issue 14's own case, not run unless asked): one failure text met by every
test, test names aside. `varied`: the failures spread over 3,000 distinct texts (each
with its own random ports, ids and UUID), 2,000 test files in 40 packages and 5 test
classes per file: many tests meeting the same problems, as in a real outage or
regression. It times the whole
`greenloop triage` process (start-up, parse, classify, cluster, summary, JSON report)
with this working tree's code. With `--before REV` the same is timed with the code of
git revision REV (`git archive` into a temporary folder, run by the same interpreter) on
the `--before-failures` sizes, each stopped after `--before-timeout` seconds, so the
earlier figure prints beside the new one in the same run. Also prints the report's size
per failure at each size, which must stay flat (a linear report), and the CPU seconds
(the process and its workers): on a shared machine wall time depends on the load, CPU
time much less.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_triage import WORDS, failure_templates, vary

ROOT = Path(__file__).resolve().parents[1]


def write_junit(path: Path, failures: int, seed: int = 7) -> None:
    """A pytest-style report: `failures` failing test cases plus one passing case in 20."""
    rng = random.Random(seed)
    templates = failure_templates()
    with path.open("w", encoding="utf-8") as out:
        out.write('<?xml version="1.0" encoding="utf-8"?>\n<testsuites name="pytest tests">')
        out.write(f'<testsuite name="pytest" tests="{failures}" failures="{failures}">\n')
        for i in range(failures):
            module = f"tests.test_mod{i % 40}"
            test = f"test_case_{i}"
            text = vary(rng.choice(templates), rng, test)
            message = text.strip().splitlines()[-1][:300]
            out.write(
                f'<testcase classname="{module}" name="{test}" time="0.{rng.randint(1, 999):03d}">'
                f"<failure message={quoteattr(message)}>{escape(text)}</failure></testcase>\n"
            )
            if i % 20 == 0:
                out.write(f'<testcase classname="{module}" name="{test}_ok" time="0.010"/>\n')
        out.write("</testsuite></testsuites>\n")


# The varied input: this many distinct failure texts, test files and classes.
VARIED_TEXTS, VARIED_FILES, VARIED_CLASSES = 3_000, 2_000, 5


def write_varied_junit(path: Path, failures: int, seed: int = 11) -> None:
    """Failures spread over VARIED_TEXTS distinct texts (each made once from a template,
    with its own random ports, ids, UUID, line numbers), VARIED_FILES test files in
    packages and test classes (pytest's dotted classnames `tests.pkg3.test_mod12.TestC2`),
    plus one passing case in 20: a large run in which many tests meet the same few
    thousand problems, as a real outage or regression makes them."""
    rng = random.Random(seed)
    templates = failure_templates()
    texts = [vary(rng.choice(templates), rng, f"test_{k}") for k in range(VARIED_TEXTS)]
    with path.open("w", encoding="utf-8") as out:
        out.write('<?xml version="1.0" encoding="utf-8"?>\n<testsuites name="pytest tests">')
        out.write(f'<testsuite name="pytest" tests="{failures}" failures="{failures}">\n')
        for i in range(failures):
            f = rng.randrange(VARIED_FILES)
            classname = f"{varied_module(f).replace('/', '.')[:-3]}.TestC{i % VARIED_CLASSES}"
            test = f"test_{rng.choice(WORDS)}_{i}"
            text = rng.choice(texts)
            message = text.strip().splitlines()[-1][:300]
            seconds = f"0.{rng.randint(1, 999):03d}"
            out.write(
                f'<testcase classname="{classname}" name="{test}" time="{seconds}">'
                f"<failure message={quoteattr(message)}>{escape(text)}</failure></testcase>\n"
            )
            if i % 20 == 0:
                out.write(f'<testcase classname="{classname}" name="{test}_ok" time="0.010"/>\n')
        out.write("</testsuite></testsuites>\n")


def varied_module(n: int) -> str:
    return f"tests/pkg{n % 40}/test_mod{n}.py"


def write_config(path: Path) -> None:
    lines = ['[environment]\nname = "bench"\n']
    for i in range(40):
        lines.append(
            f'[[index.files]]\npath = "tests/test_mod{i}.py"\nmrr_at_risk_usd = {100 * i}\n'
        )
    for n in range(VARIED_FILES):
        lines.append(
            f'[[index.files]]\npath = "{varied_module(n)}"\nmrr_at_risk_usd = {10 * (n % 97)}\n'
        )
    path.write_text("\n".join(lines), encoding="utf-8")


def children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def run_triage(
    src: Path, junit: Path, config: Path, report: Path, timeout: float
) -> tuple[float | None, float]:
    """Wall seconds the whole process took (None when stopped at `timeout`), and the CPU
    seconds it and its worker processes used."""
    env = {**os.environ, "PYTHONPATH": str(src), "COLUMNS": "120"}
    code = "import sys; from greenloop.cli import main; sys.exit(main(sys.argv[1:]))"
    argv = [sys.executable, "-c", code, "triage", str(junit), "-c", str(config)]
    argv += ["--json", str(report)]
    start, cpu = time.perf_counter(), children_cpu()
    try:
        done = subprocess.run(
            argv, env=env, capture_output=True, timeout=timeout, check=False, cwd=junit.parent
        )
    except subprocess.TimeoutExpired:
        return None, 0.0
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1):
        tail = done.stderr.decode("utf-8", "replace")[-800:]
        raise SystemExit(f"greenloop triage exited {done.returncode}:\n{tail}")
    return elapsed, children_cpu() - cpu


def describe(
    label: str, n: int, elapsed: float | None, cpu: float, report: Path, timeout: float
) -> str:
    if elapsed is None:
        return f"{label}: {n:,} failures: not finished in {timeout:g} s"
    size = report.stat().st_size
    data = json.loads(report.read_text(encoding="utf-8"))  # must be valid JSON
    return (
        f"{label}: {n:,} failures in {elapsed:.2f} s wall ({cpu:.2f} s CPU) = "
        f"{n / elapsed:,.0f} failures/s; "
        f"report {size / 1e6:.1f} MB = {size / n:,.0f} bytes/failure, "
        f"{len(data['tests']):,} tests, {len(data['clusters']):,} clusters"
    )


def write_copies_junit(path: Path, failures: int, seed: int = 13) -> None:
    """Issue 14's own case: one failure met by every test (an outage), test names aside."""
    rng = random.Random(seed)
    text = vary(rng.choice(failure_templates()), rng, "test_case")
    message = text.strip().splitlines()[-1][:300]
    with path.open("w", encoding="utf-8") as out:
        out.write('<?xml version="1.0" encoding="utf-8"?>\n<testsuites name="pytest tests">')
        out.write(f'<testsuite name="pytest" tests="{failures}" failures="{failures}">\n')
        for i in range(failures):
            out.write(
                f'<testcase classname="tests.test_mod{i % 40}" name="test_case_{i}" time="0.1">'
                f"<failure message={quoteattr(message)}>{escape(text)}</failure></testcase>\n"
            )
        out.write("</testsuite></testsuites>\n")


INPUTS = {"unique": write_junit, "varied": write_varied_junit, "copies": write_copies_junit}


def main() -> None:
    parser = argparse.ArgumentParser(description="whole-process `greenloop triage` timing")
    parser.add_argument("--failures", type=int, default=100_000)
    parser.add_argument("--sizes", default="", help="extra sizes for the linearity check")
    parser.add_argument(
        "--inputs",
        default="unique,varied",
        help="which inputs: unique, varied, copies (comma-separated)",
    )
    parser.add_argument("--before", default="", help="a git revision to time beside")
    parser.add_argument("--before-failures", default="2000,4000,8000")
    parser.add_argument("--before-timeout", type=float, default=300.0)
    args = parser.parse_args()
    inputs = [name.strip() for name in args.inputs.split(",") if name.strip()]
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs at the start")

    with tempfile.TemporaryDirectory(prefix="greenloop-bench-") as tmp:
        work = Path(tmp)
        config = work / "greenloop.toml"
        write_config(config)
        report = work / "report.json"
        sizes = sorted({args.failures, *(int(s) for s in args.sizes.split(",") if s)})
        for kind in inputs:
            write = INPUTS[kind]
            if args.before:
                old = work / "before"
                if not old.exists():
                    old.mkdir()
                    archive = subprocess.run(
                        ["git", "archive", args.before, "src"],
                        cwd=ROOT,
                        capture_output=True,
                        check=True,
                    ).stdout
                    subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
                for n in [int(s) for s in args.before_failures.split(",") if s]:
                    junit = work / f"{kind}_{n}.xml"
                    write(junit, n)
                    elapsed, cpu = run_triage(
                        old / "src", junit, config, report, args.before_timeout
                    )
                    label = f"{kind}, before ({args.before})"
                    print(describe(label, n, elapsed, cpu, report, args.before_timeout), flush=True)
                    if elapsed is None:
                        break
            for n in sizes:
                junit = work / f"{kind}_{n}.xml"
                write(junit, n)
                mb = junit.stat().st_size / 1e6
                elapsed, cpu = run_triage(ROOT / "src", junit, config, report, 600)
                label = f"{kind}, now ({mb:.0f} MB JUnit)"
                print(describe(label, n, elapsed, cpu, report, 600), flush=True)
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs at the end")


if __name__ == "__main__":
    main()
