"""Download processes die with the service, quietly, even while they are still warming up."""

from __future__ import annotations

from collections.abc import Callable

from support.server import Server


def test_warming_processes_follow_a_killed_service_without_a_traceback(
        make_server: Callable[..., Server]) -> None:
    # Killed as soon as it answers: its warm processes are importing yt-dlp at that moment.
    server = make_server(YTP_WARM_WORKERS="3")
    log_before = len(server.log())
    server.kill_hard()  # waits (with a deadline) for every process of the service to end
    after = server.log()[log_before:]
    assert "Traceback" not in after and "BrokenPipe" not in after, after
