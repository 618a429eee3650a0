"""The guard in conftest: a test that tries to leave the machine fails instead of silently trying."""

import socket

import pytest


def test_outside_addresses_are_refused():
    with socket.socket() as sock, pytest.raises(ConnectionRefusedError, match=r"may not reach 203\.0\.113\.7"):
        sock.connect(("203.0.113.7", 443))


def test_loopback_is_allowed():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.socket() as client:
            client.connect(server.getsockname())
