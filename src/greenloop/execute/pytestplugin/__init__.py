"""greenloop's pytest plugin, by concern; `greenloop.execute.plugin` is its entry point.

- `sink.py`: the event sink, one JSON line per event
- `network.py`: what the running test talks to (socket and asyncio wrappers, HTTP request heads)
- `tcp.py`: the kernel's view of this process's TCP sockets (for clients written in C)
- `mocks.py`: network clients replaced by mocks while a test runs
- `hooks.py`: the pytest hooks that turn a session into events
- `glue.py`: pytest-xdist and pytest-timeout hooks, and the parent watchdog

They need only the standard library and pytest: `execute/interpreter.py` copies them
(with `plugin.py`, `phased.py` and `wire.py`) for a project's own interpreter.
"""
