"""The demo staging environment: a small service with real dependencies and real faults."""
