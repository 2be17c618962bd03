"""The HTTP worker's request threads (appliance/request_threads.py): at the service's limit
of tasks, a request the system refuses a thread for waits for the threads there are, and the
worker lives on (the refusal killed it)."""

from __future__ import annotations

import socket
from pathlib import Path

from support.pids_limit import pids_limit
from support.server import Server, wait_for

DEADLINE = 30.0


def test_the_service_at_its_limit_of_tasks_answers_with_the_threads_it_has(
        tmp_path: Path) -> None:
    """Six files being sent to clients that do not read need six request threads while the
    worker may start none (systemd's TasksMax reached): the requests wait for the threads
    there are, and are answered once those are free, from the same worker, which says why
    they waited. The refused thread killed the worker."""
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    with (downloads / "big.bin").open("wb") as big:
        big.truncate(1 << 30)  # more than the loopback's buffers take
    server = Server(tmp_path).start()
    clients: list[socket.socket] = []
    try:
        worker = server.pids()[1]
        with pids_limit([worker]) as limit:
            limit.hold()
            for _ in range(6):
                client = socket.create_connection(("127.0.0.1", server.port))
                client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                client.sendall(b"GET /api/download/big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
                clients.append(client)
            wait_for(lambda: limit.refused() > 0, DEADLINE, message="a thread refused")
            for client in clients:
                client.close()
            assert server.get("/api/ping", timeout=DEADLINE).status_code == 200
            assert server.pids()[1] == worker, "the worker was replaced"
            assert "the system refused a thread for a request" in server.log()
    finally:
        for client in clients:
            client.close()
        server.stop()
    assert "can't start new thread" not in server.log().replace(
        "the system refused a thread for a request (can't start new thread)", "")
