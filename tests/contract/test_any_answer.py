"""Whatever a provider answers, its adapter returns a handle or an update, or raises one of the errors
the job runner handles; never a TypeError, KeyError or AttributeError from a field of an unexpected type.

Such an exception escapes the runner's handling of provider errors: a poll logs "step failed" with a
traceback and is tried again until the job's deadline, and a create is reported as "the bot restarted
while sending this request".

The answers are the real ones, mutated: each adapter's fake (bot/testing/providers) serves one job from
create to result, through the real adapter, and its answers are recorded; then each example changes one
field of one of them (to any JSON value, or away), or the status, and the adapter runs that job again
against the altered answers through httpx.MockTransport. A field the adapter reads therefore gets
every type, not only the fields of answers shaped nothing like the provider's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.errors import InvalidRequestError, ProviderError
from bot.models import JobHandle, UpdateStatus
from bot.providers._http import RetryPolicy
from tests.providers.helpers import ADAPTERS, TIMEOUT, SleepRecorder, final, req

_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.sampled_from([200, 0, 1, 2, 3, 400, 422, 429, 501, 505])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(
        [
            "COMPLETED", "IN_PROGRESS", "IN_QUEUE", "FAILED", "success", "fail", "generating", "waiting",
            "SUCCEEDED", "QUEUED", "STOP", "SAFETY", "IMAGE_SAFETY", "https://x.test/a.png", "", " ",
            "data:image/png;base64,iVBORw0KGgo=", "iVBORw0KGgo=", "image/png", '{"resultUrls": 7}', "12s",
        ]
    )
)  # fmt: skip
_JSON = st.recursive(
    _SCALARS,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=10,
)


@dataclass(frozen=True)
class Recorded:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


_RECORDED: dict[str, list[Recorded]] = {}


async def recorded(adapter_id: str) -> list[Recorded]:
    """The answers of one job's whole life at the adapter's fake (cached per adapter)."""
    if adapter_id not in _RECORDED:
        answers: list[Recorded] = []

        async def keep(response: httpx.Response) -> None:
            await response.aread()
            if not response.request.url.path.startswith("/files/"):
                answers.append(Recorded(response.status_code, list(response.headers.items()), response.content))

        adapter = ADAPTERS[adapter_id]
        async with adapter.make_fake() as fake, httpx.AsyncClient(event_hooks={"response": [keep]}) as client:
            update = await final(adapter.connect(fake, client, SleepRecorder(), timeout=TIMEOUT))
        assert update.status is UpdateStatus.SUCCEEDED and answers
        _RECORDED[adapter_id] = answers
    return _RECORDED[adapter_id]


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON document, the document itself included."""
    found = [path]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*path, index))
    return found


_DELETE = object()


def _replaced(node: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    copy: Any = dict(node) if isinstance(node, dict) else list(node)  # both index, assign and delete alike
    if not rest and value is _DELETE:
        del copy[head]
    else:
        copy[head] = _replaced(node[head], rest, value)
    return copy


@st.composite
def mutations(draw: st.DrawFn, answers: list[Recorded]) -> list[Recorded]:
    """The recorded answers with one thing changed: a JSON field's value (any type) or presence, or a status."""
    index = draw(st.integers(0, len(answers) - 1))
    target = answers[index]
    try:
        document = json.loads(target.body)
    except ValueError:
        document = None
    if document is None or draw(st.integers(0, 9)) == 0:
        status = draw(st.sampled_from([200, 201, 202, 204, 400, 401, 402, 403, 404, 409, 422, 429, 500, 503]))
        changed = Recorded(status, target.headers, target.body)
    else:
        path = draw(st.sampled_from(_paths(document)))
        value = draw(_JSON if not path or draw(st.booleans()) else st.just(_DELETE))
        body = json.dumps(_replaced(document, path, value), allow_nan=True).encode()
        headers = [(k, v) for k, v in target.headers if k.lower() != "content-length"]
        changed = Recorded(target.status, headers, body)
    return [*answers[:index], changed, *answers[index + 1 :]]


def _over(answers: list[Recorded], adapter_id: str) -> Any:
    """The adapter against ``answers`` in order, the last repeating."""
    served = iter(answers)
    last = answers[-1]

    def answer(request: httpx.Request) -> httpx.Response:
        nonlocal last
        last = next(served, last)
        return httpx.Response(last.status, headers=last.headers, content=last.body)

    adapter = ADAPTERS[adapter_id]
    return adapter.make_provider(
        api_key="sk-mock-0123456789",
        base_url="https://provider.test",
        client=httpx.AsyncClient(transport=httpx.MockTransport(answer)),
        sleep=SleepRecorder(),
        policy=RetryPolicy(max_attempts=1),
    )


@pytest.mark.parametrize("adapter_id", list(ADAPTERS))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
async def test_a_job_through_any_altered_answer_ends_in_an_update_or_an_error_the_runner_handles(
    adapter_id: str, data: st.DataObject
) -> None:
    answers = data.draw(mutations(await recorded(adapter_id)))
    provider = _over(answers, adapter_id)
    try:
        handle = await provider.submit(req())
    except (ProviderError, InvalidRequestError) as exc:
        assert exc.user_message
        return
    assert isinstance(handle, JobHandle) and handle.provider_job_id
    for _ in range(len(answers) + 2):
        try:
            update = await provider.poll(handle)
        except ProviderError as exc:
            assert exc.user_message
            return
        if update.status not in (UpdateStatus.QUEUED, UpdateStatus.RUNNING):
            return
