"""moto's server on loopback (`localcloud.server`): a client's connection serves request after request."""

from __future__ import annotations

import io
import socket
import socketserver
from collections.abc import Iterator
from typing import Any
from unittest import mock

import boto3
import pytest

from localcloud.server import moto_server


@pytest.fixture
def server() -> Iterator[tuple[str, list[tuple[socket.socket, object]]]]:
    """The server's URL, and each connection it accepted."""
    accepted: list[tuple[socket.socket, object]] = []
    accept = socketserver.TCPServer.get_request

    def counted(self: socketserver.TCPServer) -> tuple[socket.socket, object]:
        connection = accept(self)
        accepted.append(connection)
        return connection

    with mock.patch.object(socketserver.TCPServer, "get_request", counted):
        running = moto_server("127.0.0.1")
        running.start()
        host, port = running.get_host_and_port()
        try:
            yield f"http://{host}:{port}", accepted
        finally:
            running.stop()


def test_one_connection_serves_a_clients_calls_one_after_the_other(
    server: tuple[str, list[tuple[socket.socket, object]]],
) -> None:
    url, accepted = server
    dynamodb: Any = boto3.client("dynamodb", endpoint_url=url)
    key = [{"AttributeName": "k", "KeyType": "HASH"}]
    attributes = [{"AttributeName": "k", "AttributeType": "S"}]
    dynamodb.create_table(
        TableName="t", KeySchema=key, AttributeDefinitions=attributes, BillingMode="PAY_PER_REQUEST"
    )
    for value in range(20):
        dynamodb.put_item(TableName="t", Item={"k": {"S": "a"}, "v": {"N": str(value)}})
    assert dynamodb.get_item(TableName="t", Key={"k": {"S": "a"}})["Item"]["v"] == {"N": "19"}
    assert len(accepted) == 1  # werkzeug's server alone opened 22
    # Its responses are not held back for the client's ACK (40 ms each).
    [(connection, _)] = accepted
    assert connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


def test_bodies_errors_and_chunked_uploads_leave_the_next_request_intact(
    server: tuple[str, list[tuple[socket.socket, object]]],
) -> None:
    url, _ = server
    s3 = boto3.client("s3", endpoint_url=url)
    s3.create_bucket(Bucket="kept-alive")
    body = bytes(range(256)) * 4096  # 1 MiB
    for attempt in range(3):
        s3.put_object(Bucket="kept-alive", Key=f"put-{attempt}", Body=body)
        with pytest.raises(s3.exceptions.NoSuchKey):
            s3.get_object(Bucket="kept-alive", Key="missing")
        # A body the application refuses unread: the next request must still parse.
        with pytest.raises(s3.exceptions.ClientError):
            s3.put_object(Bucket="no-such-bucket", Key="k", Body=body)
        s3.upload_fileobj(io.BytesIO(body * 6), "kept-alive", f"multipart-{attempt}")
        assert s3.get_object(Bucket="kept-alive", Key=f"put-{attempt}")["Body"].read() == body
    listed = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="kept-alive")["Contents"])
    assert listed == [f"{kind}-{n}" for kind in ("multipart", "put") for n in range(3)]
