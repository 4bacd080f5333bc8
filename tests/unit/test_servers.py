"""Free ports for the embedded servers: bindable, and SeaweedFS's gRPC partner ports free too."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from devstack.servers import (
    LOOPBACK,
    SEAWEED_GRPC_OFFSET,
    EmbeddedS3,
    free_port,
    free_seaweed_port,
    free_seaweed_ports,
)


def test_free_port_is_bindable() -> None:
    port = free_port()
    assert 0 < port <= 65535
    with socket.socket() as sock:
        sock.bind((LOOPBACK, port))


def test_free_seaweed_ports_have_free_grpc_partners() -> None:
    ports = free_seaweed_ports(4)
    assert len(ports) == 4
    everything = ports + [p + SEAWEED_GRPC_OFFSET for p in ports]
    assert len(set(everything)) == 8
    assert max(everything) <= 65535
    single = free_seaweed_port()
    assert single + SEAWEED_GRPC_OFFSET <= 65535
    with socket.socket() as http_sock, socket.socket() as grpc_sock:
        http_sock.bind((LOOPBACK, single))
        grpc_sock.bind((LOOPBACK, single + SEAWEED_GRPC_OFFSET))


def test_seaweed_port_must_leave_room_for_grpc(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="gRPC"):
        EmbeddedS3(tmp_path / "s3", port=60000)
