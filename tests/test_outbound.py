"""Where the service's own connections may go, on the address a socket really connects to.

Apprise makes its own requests (a chat target's, and the picture it fetches to attach: the
item's thumbnail, which is site metadata), so the refusal of ``appliance.outbound`` is put on
the sockets that connect while Apprise sends (``connections_checked``). Nothing here connects
anywhere but this machine: ``0.0.0.0`` (and ``0``, which the C library reads as it) is
refused, and Linux would connect it to this machine, where the receiver listens.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import socket
from collections.abc import Iterator

import pytest
from support.webhooks import Receiver

from appliance.files.fetch import any_address
from appliance.notify.messages import Message
from appliance.notify.senders import Outcome, send_apprise
from appliance.outbound import RefusedConnection, connections_checked


@pytest.fixture(name="receiver")
def _receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _port(receiver: Receiver) -> int:
    return receiver.server.server_address[1]


def test_an_apprise_target_at_a_refused_address_is_not_reached(receiver: Receiver) -> None:
    """Saved before the check on saving, or by a name (or a number form: "2852039166" is
    169.254.169.254 to the C library) that the check on saving cannot read as an address."""
    port = _port(receiver)
    assert send_apprise(f"json://0.0.0.0:{port}/x", Message("t", "b"), 5) == Outcome(
        False, None, "Cannot send: 0.0.0.0 is the unspecified address: notifications may "
                     "not go there.")  # not retried
    assert send_apprise(f"json://2852039166:{port}/x", Message("t", "b"), 5) == Outcome(
        False, None, "Cannot send: 169.254.169.254 is a link-local or cloud metadata address: "
                     "notifications may not go there.")  # (urllib3 looked the name up)
    assert receiver.hits == []
    # The same receiver by an allowed address is reached: the guard is no blanket refusal.
    assert send_apprise(receiver.url("/x", scheme="json"), Message("t", "b"), 5).ok
    assert [hit.path for hit in receiver.hits] == ["/x"]


def test_a_picture_is_fetched_for_a_chat_as_the_thumbnail_proxy_fetches(
        receiver: Receiver) -> None:
    """The thumbnail a message attaches is the site's URL, which Apprise fetched itself from
    wherever it pointed (this machine, the LAN). It is fetched as /api/thumbnail fetches: the
    public internet only, unless YTP_FETCH_PRIVATE_ADDRESSES, and never a refused address."""
    hook = receiver.url("/with", scheme="json")
    here = receiver.url("/thumb.png")
    assert send_apprise(hook, Message("t", "b", attach=here), 5).ok
    assert [hit.path for hit in receiver.hits] == ["/with"]  # the picture was not asked for
    assert not receiver.hits[0].json().get("attachments")
    refused = f"http://0.0.0.0:{_port(receiver)}/thumb.png"
    assert send_apprise(hook, Message("t", "b", attach=refused), 5, any_address).ok
    assert [hit.path for hit in receiver.hits] == ["/with", "/with"]
    assert send_apprise(hook, Message("t", "b", attach=here), 5, any_address).ok
    assert [hit.path for hit in receiver.hits] == ["/with", "/with", "/thumb.png", "/with"]
    assert receiver.hits[-1].json()["attachments"][0]["filename"] == "thumbnail.png"


def test_every_socket_connecting_within_the_check_is_held_to_it(receiver: Receiver) -> None:
    port = _port(receiver)
    with connections_checked("notifications") as refused:
        for family, address in ((socket.AF_INET, ("0.0.0.0", port)),
                                (socket.AF_INET, ("0", port)),
                                (socket.AF_INET6, ("::", port)),
                                (socket.AF_INET6, ("::ffff:169.254.169.254", port))):
            with socket.socket(family) as sock, pytest.raises(RefusedConnection) as caught:
                sock.connect(address)
            assert str(caught.value).startswith(f"{address[0]} is ")
            assert str(caught.value).endswith(": notifications may not go there.")
            assert refused() is caught.value
        with pytest.raises(RefusedConnection, match=r"^0\.0\.0\.0 is the unspecified address"):
            socket.create_connection(("0.0", port), timeout=5)  # resolved first, then connected
        # What the service does connect to: this machine, a name of it, and other families.
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        socket.create_connection(("localhost", port), timeout=5).close()
        left, right = socket.socketpair()
        left.close()
        right.close()
        with socket.socket(socket.AF_INET) as sock, pytest.raises(OSError) as missing:
            sock.connect(("no-such-host.invalid", port))  # not found: connect's own error
        assert not isinstance(missing.value, RefusedConnection)
        # Work handed to another thread with this context is held to it as well (Apprise's).
        context = contextvars.copy_context()
        with concurrent.futures.ThreadPoolExecutor(1) as pool, \
                pytest.raises(RefusedConnection):
            pool.submit(context.run, socket.create_connection, ("0.0.0.0", port), 5).result()
    # Outside, nothing is judged: the rest of the process connects as before.
    socket.create_connection(("0.0.0.0", port), timeout=5).close()
    assert receiver.hits == []
