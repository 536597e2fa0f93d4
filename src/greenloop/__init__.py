"""greenloop: deploy -> verify -> triage -> remediate, until staging is green."""

__version__ = "0.1.0"
