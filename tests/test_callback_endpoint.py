"""The provider callback endpoint is public: what anyone can make it hold (memory, connections, time) before a
signature can be checked is bounded. The real aiohttp server on a local port, spoken to over raw sockets."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator

import pytest

from bot.callbacks import MAX_BODY_BYTES, PATH, CallbackServer, kie_signature

KEY = "k" * 32


@pytest.fixture
async def server() -> AsyncIterator[CallbackServer]:
    woken: list[str] = []

    async def on_callback(provider: str, task_id: str) -> bool:
        woken.append(task_id)
        return True

    endpoint = CallbackServer(
        host="127.0.0.1",
        port=0,
        hmac_key=KEY,
        on_callback=on_callback,
        idle_seconds=0.5,
        body_seconds=0.5,
        max_reading=2,
        max_connections=4,
    )
    await endpoint.start()
    try:
        yield endpoint
    finally:
        await endpoint.stop()


def head(length: int, *, signature: str = "c2lnbmF0dXJl") -> bytes:
    return (
        f"POST {PATH} HTTP/1.1\r\nHost: bot\r\nX-Webhook-Timestamp: {int(time.time())}\r\n"
        f"X-Webhook-Signature: {signature}\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


async def status_of(reader: asyncio.StreamReader) -> int:
    line = await asyncio.wait_for(reader.readline(), 5)
    return int(line.split()[1]) if line else 0


async def signed_callback(server: CallbackServer, task_id: str) -> int:
    stamp = str(int(time.time()))
    body = json.dumps({"code": 200, "data": {"taskId": task_id, "state": "success"}}).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(
        f"POST {PATH} HTTP/1.1\r\nHost: bot\r\nX-Webhook-Timestamp: {stamp}\r\n"
        f"X-Webhook-Signature: {kie_signature(task_id, stamp, KEY)}\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n".encode()
        + body
    )
    try:
        return await status_of(reader)
    finally:
        writer.close()


async def test_a_body_larger_than_a_task_record_is_refused_before_it_is_read(server: CallbackServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(head(MAX_BODY_BYTES + 1))  # and not one byte of it
    assert await status_of(reader) == 413
    writer.close()
    assert MAX_BODY_BYTES <= 64 * 1024  # a Kie task record is a few kilobytes; it was 1 MiB


async def test_a_request_that_never_finishes_is_let_go(server: CallbackServer) -> None:
    # Half-sent headers: aiohttp's own default kept such a connection an hour.
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(f"POST {PATH} HTTP/1.1\r\nHost: bot\r\n".encode())
    started = time.monotonic()
    assert await asyncio.wait_for(reader.read(), 5) == b""
    assert time.monotonic() - started < 3
    writer.close()
    # A body that stops coming.
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(head(100) + b"{")
    assert await status_of(reader) == 408
    writer.close()


async def test_bodies_read_at_once_and_connections_are_bounded(server: CallbackServer) -> None:
    dripping = []
    for _ in range(2):  # max_reading
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(head(100) + b"{")
        dripping.append((reader, writer))
    await asyncio.sleep(0.1)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(head(10) + b"{}")
    assert await status_of(reader) == 503  # turned away before its body is read
    writer.close()
    # Past max_connections a connection is closed as it arrives; those open are unaffected.
    idle = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(2)]
    await asyncio.sleep(0.1)
    reader, turned_away = await asyncio.open_connection("127.0.0.1", server.port)
    assert await asyncio.wait_for(reader.read(), 5) == b""
    for _, writer in [*dripping, *idle, (reader, turned_away)]:
        writer.close()
    await asyncio.sleep(0.2)
    assert await signed_callback(server, "task-after") == 200  # and once they go, callbacks come in again


async def test_a_sender_that_goes_away_mid_body_is_one_refusal_not_a_traceback(
    server: CallbackServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        for _ in range(20):
            _, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(head(1000) + b'{"data": ')
            await writer.drain()
            writer.close()
        await asyncio.sleep(0.5)
        assert await signed_callback(server, "task-1") == 200
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert server.refused == 20 and server.accepted == 1
