"""A task run in the test's process, and its log as stored."""

from __future__ import annotations

from typing import Any

from appliance.runtime import Runtime


def run_now(runtime: Runtime, task: dict[str, Any]) -> dict[str, Any]:
    """Run ``task`` now, as ``POST /api/tasks/{id}/execute`` does; its execution."""
    return runtime.tasks.runner.execute(runtime.tasks.get(task["id"]), "manual")


def execution_log(runtime: Runtime, execution: dict[str, Any]) -> list[str]:
    stored = runtime.tasks.store.execution(execution["id"], with_log=True)
    assert stored is not None
    return stored["log"]
