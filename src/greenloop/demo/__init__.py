"""The demo staging environment: a small service with real dependencies and real faults."""

# The pid of the `greenloop demo` that owns the demo service (set by the runner, inherited
# through deploy and restart commands): the service stops when that process dies.
OWNER_ENV = "GREENLOOP_DEMO_OWNER_PID"
