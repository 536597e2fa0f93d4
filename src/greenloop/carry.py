"""Carrying out what stages ask for: the loop's hands.

Stages return requests (records.py: `WaitForHealth`, `FlagNeedsPerson`) or, where the
answer decides their next step, ask through the narrow `Carrier` they are handed
(remediation's `regate` and `roll_back`); this module does the asking's I/O, so no
stage calls another. `ensure_deployed` and `rollback` are the deploy stage with its
health wait carried out and recorded, for callers outside the loop (remediation's
redeploy and rollback actions, tests).
"""

from __future__ import annotations

import time

from greenloop.config import Config
from greenloop.deploy import DeployStep, after_health, deploy_if_due, roll_back
from greenloop.gate import ProgressCallback, check_gate, wait_for_healthy
from greenloop.recorder import Recorder
from greenloop.records import DeployResult, GateResult, WaitForHealth
from greenloop.store import Store


class Carrier:
    """Carries out requests for one run (and, for re-gating, one iteration)."""

    def __init__(
        self,
        config: Config,
        store: Store,
        run_id: str | None,
        iteration: int | None = None,
        recorder: Recorder | None = None,
    ) -> None:
        self.config, self.store, self.run_id, self.iteration = config, store, run_id, iteration
        self.recorder = recorder  # the run's, when inside the loop

    def wait_for_health(
        self,
        request: WaitForHealth,
        *,
        on_progress: ProgressCallback | None = None,
        run_id: str | None = None,
    ) -> GateResult:
        """Check the gate with back-off until it passes or the request's deadline; the last
        verdict. Probe results are kept under `run_id` (None: under no run)."""
        return wait_for_healthy(
            self.config,
            self.store,
            timeout_s=max(0.0, request.deadline - time.monotonic()),
            on_progress=on_progress,
            run_id=run_id,
        )

    def deployed(self, step: DeployStep) -> DeployResult:
        """A deploy or rollback step made final: its health wait done (not recorded)."""
        gate = None
        if step.wait is not None:
            gate = self.wait_for_health(step.wait, run_id=self.run_id)
        return after_health(step, gate, self.config)

    def regate(self) -> GateResult:
        """Probe every component once more (recorded with this run and iteration)."""
        return check_gate(self.config, self.store, run_id=self.run_id, iteration=self.iteration)

    def roll_back(self) -> DeployResult:
        """Run the rollback command, wait for health, record it."""
        result = self.deployed(roll_back(self.config))
        if self.recorder is not None:
            self.recorder.deploy(result)
        else:
            self.store.remediation.record_deploy(self.run_id, result)
        return result


def ensure_deployed(
    config: Config, store: Store, *, force: bool, run_id: str | None
) -> DeployResult:
    """Deploy when forced or stale, wait until the new revision serves and is healthy, record it.

    A failed or timed-out deploy comes back with ok=False, its output and a detail in words.
    """
    result = Carrier(config, store, run_id).deployed(deploy_if_due(config, force=force))
    store.remediation.record_deploy(run_id, result)
    return result


def rollback(config: Config, store: Store, run_id: str | None) -> DeployResult:
    """Run `deploy.rollback_command`, wait until the previous revision serves and is healthy."""
    return Carrier(config, store, run_id).roll_back()
