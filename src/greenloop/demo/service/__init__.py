"""The demo service: FastAPI app, fault model, dependency backends and structured logs."""
