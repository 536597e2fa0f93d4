"""What the pytest plugin and the runners agree on, without importing pytest.

The runner sets these variables in the test process's environment; the plugin
(`plugin.py`, which imports pytest) reads them. Kept apart so the greenloop
process can start pytest without paying for importing it.
"""

EVENTS_ENV = "GREENLOOP_EVENTS"  # where the plugin writes its JSON events, one per line
ORDER_ENV = "GREENLOOP_ORDER"  # a file of node ids / files, first first
PARENT_ENV = "GREENLOOP_PARENT_PID"  # greenloop's pid: when it dies, this pytest stops too
PLAN_ENV = "GREENLOOP_PHASE_PLAN"  # shared session: which files belong to which phase (JSON)
CONTROL_ENV = "GREENLOOP_PHASE_CONTROL"  # shared session: `run <phase>` / `stop` lines

# Entry-point plugins that cost start-up time and are disabled (`-p no:NAME`, and not
# imported by the warm pytest) unless a selected file or conftest.py has this word.
HEAVY_PLUGINS = {"anyio": b"anyio"}
