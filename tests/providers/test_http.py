"""The shared HTTP plumbing: Retry-After parsing, backoff, the retry loop's safety rules, redaction."""

from __future__ import annotations

import logging
import math
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.errors import (
    BadInputError,
    ProviderError,
    RateLimitedError,
    SubmitUncertainError,
    TransientError,
)
from bot.providers._http import (
    RetryPolicy,
    body_excerpt,
    describe_response,
    parse_retry_after,
    redact,
    request_secrets,
    request_with_retry,
    safe_url,
)
from tests.providers.helpers import SleepRecorder

SECRET = "sk-live-4f1c2e9a8b7d"
URL = "https://api.example.test/v1/things?key=" + SECRET
NOW = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)


def simple_map(response: httpx.Response) -> ProviderError | None:
    """A provider-style mapper: 404 is an answer, 429 rate limit, 5xx transient, other 4xx bad input."""
    if response.status_code == 404:
        return None
    if response.status_code == 429:
        return RateLimitedError(detail="429")
    if response.status_code >= 500:
        return TransientError(detail=f"HTTP {response.status_code}")
    return BadInputError(detail=f"HTTP {response.status_code}")


Step = httpx.Response | Exception


class Script:
    """A MockTransport handler answering from a list of responses/exceptions; counts the calls."""

    def __init__(self, *steps: Step | Callable[[httpx.Request], Step]) -> None:
        self.steps = list(steps)
        self.calls: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request)
        step = self.steps.pop(0) if self.steps else httpx.Response(200, json={"ok": True})
        if callable(step) and not isinstance(step, httpx.Response | Exception):
            step = step(request)
        if isinstance(step, Exception):
            raise step
        return step


def client_for(script: Script) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(script))


async def send(
    script: Script,
    sleeps: SleepRecorder,
    *,
    method: str = "POST",
    idempotent: bool = False,
    policy: RetryPolicy | None = None,
) -> httpx.Response:
    async with client_for(script) as client:
        return await request_with_retry(
            client,
            method,
            URL,
            idempotent=idempotent,
            policy=policy or RetryPolicy(),
            map_error=simple_map,
            sleep=sleeps,
            provider="example",
            headers={"Authorization": f"Bearer {SECRET}"},
            json={"prompt": "apple"},
        )


# --- parse_retry_after ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        ("0", 0.0),
        (" 3 ", 3.0),
        ("1.5", 1.5),
        ("-1", None),
        ("nan", None),
        ("inf", None),
        ("soon", None),
        ("", None),
        (None, None),
        ("Sun, 22 Nov 2026 12:00:30 GMT", 30.0),
        ("Sun, 22 Nov 2026 11:00:00 GMT", 0.0),  # in the past: retry now
        ("Sunday, 22-Nov-26 12:01:00 GMT", 60.0),  # obsolete RFC 850 form, still to be accepted
        ("Sun Nov 22 12:01:00 2026", 60.0),  # asctime form: no zone, means GMT
    ],
)
def test_parse_retry_after_examples(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected


@given(st.integers(min_value=0, max_value=10**9))
def test_parse_retry_after_delay_seconds_roundtrip(seconds: int) -> None:
    assert parse_retry_after(str(seconds)) == float(seconds)


@given(st.integers(min_value=0, max_value=10 * 24 * 3600))
def test_parse_retry_after_http_date_roundtrip(seconds: int) -> None:
    when = NOW + timedelta(seconds=seconds)
    assert parse_retry_after(format_datetime(when, usegmt=True), now=NOW) == pytest.approx(seconds)


@given(st.text(max_size=60))
def test_parse_retry_after_never_raises_and_is_sane(value: str) -> None:
    result = parse_retry_after(value, now=NOW)
    assert result is None or (math.isfinite(result) and result >= 0)


# --- RetryPolicy ---------------------------------------------------------------------------------


@given(
    attempt=st.integers(min_value=1, max_value=60),
    retry_after=st.none() | st.floats(min_value=0, max_value=1e6, allow_nan=False),
    base=st.floats(min_value=0, max_value=10),
    cap=st.floats(min_value=0, max_value=120),
)
def test_delay_is_bounded_and_honours_retry_after(
    attempt: int, retry_after: float | None, base: float, cap: float
) -> None:
    policy = RetryPolicy(base_delay=base, max_delay=cap)
    delay = policy.delay(attempt, retry_after)
    assert 0.0 <= delay <= cap
    if retry_after is not None:
        assert delay >= min(retry_after, cap)


def test_delay_without_jitter_doubles_up_to_the_cap() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=3.0, jitter=False)
    assert [policy.delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_policy_defaults_and_validation() -> None:
    policy = RetryPolicy()
    assert (policy.max_attempts, policy.base_delay, policy.max_delay, policy.jitter) == (4, 0.5, 20.0, True)
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(base_delay=-1)


# --- request_with_retry: statuses ----------------------------------------------------------------


async def test_429_then_success_waits_retry_after() -> None:
    sleeps = SleepRecorder()
    script = Script(httpx.Response(429, headers={"Retry-After": "2"}), httpx.Response(200, json={"id": 1}))
    response = await send(script, sleeps)
    assert response.json() == {"id": 1}
    assert len(script.calls) == 2
    assert len(sleeps.delays) == 1 and 2.0 <= sleeps.delays[0] <= 20.0


async def test_429_exhausted_raises_rate_limited_with_retry_after() -> None:
    sleeps = SleepRecorder()
    script = Script(*[httpx.Response(429, headers={"Retry-After": "7"}) for _ in range(4)])
    with pytest.raises(RateLimitedError) as info:
        await send(script, sleeps)
    assert info.value.retry_after == 7.0
    assert info.value.status_code == 429 and info.value.provider == "example"
    assert len(script.calls) == 4 and len(sleeps.delays) == 3


async def test_retry_after_beyond_the_cap_is_handed_back_not_slept() -> None:
    sleeps = SleepRecorder()
    script = Script(httpx.Response(429, headers={"Retry-After": "3600"}))
    with pytest.raises(RateLimitedError) as info:
        await send(script, sleeps)
    assert info.value.retry_after == 3600.0
    assert len(script.calls) == 1 and sleeps.delays == []


async def test_5xx_on_create_is_retried_then_raises_transient() -> None:
    sleeps = SleepRecorder()
    script = Script(*[httpx.Response(500) for _ in range(4)])
    with pytest.raises(TransientError):
        await send(script, sleeps, idempotent=False)
    assert len(script.calls) == 4
    assert len(sleeps.delays) == 3


async def test_503_then_success_on_create() -> None:
    sleeps = SleepRecorder()
    script = Script(httpx.Response(503), httpx.Response(200, json={}))
    assert (await send(script, sleeps, idempotent=False)).status_code == 200
    assert len(script.calls) == 2


async def test_504_on_create_is_uncertain_not_retried() -> None:
    sleeps = SleepRecorder()
    script = Script(httpx.Response(504), httpx.Response(200))
    with pytest.raises(SubmitUncertainError):
        await send(script, sleeps, idempotent=False)
    assert len(script.calls) == 1


async def test_504_on_idempotent_call_is_retried() -> None:
    sleeps = SleepRecorder()
    script = Script(httpx.Response(504), httpx.Response(200))
    assert (await send(script, sleeps, method="GET", idempotent=True)).status_code == 200
    assert len(script.calls) == 2


async def test_non_retryable_status_raises_at_once() -> None:
    sleeps = SleepRecorder()
    script = Script(httpx.Response(400, json={"detail": "bad"}))
    with pytest.raises(BadInputError) as info:
        await send(script, sleeps, idempotent=True)
    assert info.value.status_code == 400
    assert len(script.calls) == 1 and sleeps.delays == []


async def test_status_the_mapper_accepts_is_returned() -> None:
    sleeps = SleepRecorder()
    script = Script(httpx.Response(404, json={"status": "NOT_FOUND"}))
    assert (await send(script, sleeps)).status_code == 404


# --- request_with_retry: transport failures ------------------------------------------------------


@pytest.mark.parametrize("exc_type", [httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout])
async def test_not_sent_errors_are_retried_even_for_a_create(exc_type: type[httpx.TransportError]) -> None:
    sleeps = SleepRecorder()
    script = Script(exc_type("nope"), httpx.Response(200, json={"id": 2}))
    assert (await send(script, sleeps, idempotent=False)).json() == {"id": 2}
    assert len(script.calls) == 2


@pytest.mark.parametrize(
    "exc_type", [httpx.ReadTimeout, httpx.WriteTimeout, httpx.RemoteProtocolError, httpx.ReadError]
)
async def test_maybe_sent_errors_never_resend_a_create(exc_type: type[httpx.TransportError]) -> None:
    sleeps = SleepRecorder()
    script = Script(exc_type("lost"), httpx.Response(200))
    with pytest.raises(SubmitUncertainError) as info:
        await send(script, sleeps, idempotent=False)
    assert len(script.calls) == 1 and sleeps.delays == []
    assert SECRET not in info.value.detail and SECRET not in info.value.user_message


@pytest.mark.parametrize("exc_type", [httpx.ReadTimeout, httpx.RemoteProtocolError])
async def test_maybe_sent_errors_are_retried_when_idempotent(exc_type: type[httpx.TransportError]) -> None:
    sleeps = SleepRecorder()
    script = Script(exc_type("lost"), exc_type("lost"), httpx.Response(200))
    assert (await send(script, sleeps, method="GET", idempotent=True)).status_code == 200
    assert len(script.calls) == 3


async def test_idempotent_timeouts_exhausted_raise_transient() -> None:
    sleeps = SleepRecorder()
    script = Script(*[httpx.ReadTimeout("slow") for _ in range(4)])
    with pytest.raises(TransientError):
        await send(script, sleeps, method="GET", idempotent=True)
    assert len(script.calls) == 4


async def test_unsupported_protocol_is_not_retried() -> None:
    sleeps = SleepRecorder()
    async with httpx.AsyncClient() as client:
        with pytest.raises(ProviderError) as info:
            await request_with_retry(
                client, "GET", "ftp://example.test/x", idempotent=True, policy=RetryPolicy(),
                map_error=simple_map, sleep=sleeps,
            )  # fmt: skip
    assert not isinstance(info.value, TransientError | SubmitUncertainError)
    assert sleeps.delays == []


async def test_connection_refused_over_a_real_socket() -> None:
    with socket.socket() as sock:  # grab a free port, then close it so nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sleeps = SleepRecorder()
    async with httpx.AsyncClient(timeout=2.0) as client:
        with pytest.raises(TransientError) as info:
            await request_with_retry(
                client, "POST", f"http://127.0.0.1:{port}/v1/queue/x", idempotent=False,
                policy=RetryPolicy(max_attempts=3), map_error=simple_map, sleep=sleeps,
            )  # fmt: skip
    assert len(sleeps.delays) == 2
    assert "after 3 attempts" in info.value.detail


# --- redaction -----------------------------------------------------------------------------------


async def test_retry_logs_carry_no_query_string_or_key(caplog: pytest.LogCaptureFixture) -> None:
    sleeps = SleepRecorder()
    script = Script(httpx.Response(500), httpx.ConnectError(f"refused for {URL}"), httpx.Response(200))
    with caplog.at_level(logging.DEBUG, logger="bot.providers._http"):
        await send(script, sleeps, method="GET", idempotent=True)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert SECRET not in text
    assert "?key" not in text
    assert "https://api.example.test/v1/things" in text


async def test_error_detail_redacts_a_key_the_server_echoes() -> None:
    sleeps = SleepRecorder()

    def echo(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, text=f"bad header {request.headers['Authorization']} and key {SECRET}")

    script = Script(echo)

    def mapper(response: httpx.Response) -> ProviderError:
        from bot.providers._http import describe_response

        return BadInputError(detail=describe_response(response))

    async with client_for(script) as client:
        with pytest.raises(BadInputError) as info:
            await request_with_retry(
                client, "POST", URL, idempotent=False, policy=RetryPolicy(), map_error=mapper,
                sleep=sleeps, headers={"Authorization": f"Bearer {SECRET}"},
            )  # fmt: skip
    assert SECRET not in info.value.detail
    assert "***" in info.value.detail
    assert "?key" not in info.value.detail


def test_safe_url_drops_userinfo_query_and_fragment() -> None:
    assert safe_url("https://user:pw@h.test:8443/a/b?key=1&x=2#frag") == "https://h.test:8443/a/b"
    assert safe_url(httpx.URL("http://h.test/p")) == "http://h.test/p"


@pytest.mark.parametrize(
    "link", ["http://127.0.0.1:3444", "http://h.test:99999999/a", "http://h.test:port/a", "http://[::1/a"]
)
def test_a_malformed_link_in_an_answer_is_described_not_raised(link: str) -> None:
    """A provider's error body may hold any link, and its excerpt may cut one mid-port (found by
    tests/contract/test_any_answer.py): describing the answer must not raise."""
    assert safe_url(link) == "<malformed URL>" or safe_url(link).startswith("http://")
    request = httpx.Request("GET", "https://provider.test/v2/requests/r1")
    response = httpx.Response(400, text='{"error": "bad", "poll_url": "' + link + '..."}', request=request)
    assert "HTTP 400" in describe_response(response)
    assert redact(f"see {link} and more").startswith("see ")


def test_redact_known_secrets_and_credential_shapes() -> None:
    text = f"Authorization: Bearer {SECRET}; url https://x.test/a?key=abc123&b=1; Key zz9zzzzzzzzzzz"
    out = redact(text, [SECRET, None, ""])
    assert SECRET not in out
    assert "abc123" not in out and "b=1" not in out  # whole query strings go
    assert "https://x.test/a" in out
    assert redact("see ?key=abc123&b=1") == "see ?key=***&b=1"  # a bare query, no URL around it
    assert "zz9zzzzzzzzzzz" not in out


def test_request_secrets_finds_headers_and_query_keys() -> None:
    request = httpx.Request("GET", "https://x.test/v1?key=qk-123456&other=1", headers={"x-goog-api-key": "gk-abcdef"})
    found = request_secrets(request)
    assert "qk-123456" in found and "gk-abcdef" in found
    response = httpx.Response(500, text="oops qk-123456 gk-abcdef " + "x" * 1000, request=request)
    excerpt = body_excerpt(response, limit=50)
    assert "qk-123456" not in excerpt and "gk-abcdef" not in excerpt
    assert len(excerpt) < 120


@pytest.mark.parametrize(
    ("seconds", "said"),
    [
        (None, "Try again in a minute."),
        (float("nan"), "Try again in a minute."),
        (1.0, "Try again in a minute."),
        (60.0, "Try again in a minute."),
        (61.0, "Try again in about 2 minutes."),
        (600.0, "Try again in about 10 minutes."),
        (3 * 3600.0, "Try again in about 3 hours."),
        (float("inf"), "Try again later."),
    ],
)
def test_a_rate_limit_tells_the_member_when_to_try_again(seconds: float | None, said: str) -> None:
    error = RateLimitedError("SeaArt is rate limiting the bot right now.", retry_after=seconds)
    assert error.user_message == f"SeaArt is rate limiting the bot right now. {said}"
    error.wait_for(None)  # a wait learned later replaces the one said before
    assert error.user_message == "SeaArt is rate limiting the bot right now. Try again in a minute."
