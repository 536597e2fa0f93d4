"""greenloop: deploy -> verify -> triage -> remediate, until staging is green."""

__version__ = "0.1.0"
DEFAULT_CONFIG = "greenloop.toml"  # the config file `-c` defaults to
