"""What only Kie.ai and its sinancode proxy do, against FakeKie over a real socket with the real httpx
client: the envelope codes that decide over the HTTP status, the fields each flavour sends, the record
that lags its creation, the credit check. What every adapter does is in tests/contract."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.errors import (
    AuthError,
    BadInputError,
    ErrorCategory,
    InvalidRequestError,
    OutOfCreditError,
    ProviderError,
    RateLimitedError,
    SubmitUncertainError,
    TransientError,
)
from bot.models import GenerationRequest, JobHandle, UpdateStatus
from bot.providers import UnknownProviderError, provider_class
from bot.providers.base import Capabilities, FindsLostTasks, Provider, validate
from bot.providers.kie import (
    KIE_MODELS,
    SINANCODE_MODELS,
    KieProvider,
    SinancodeProvider,
    callback_url_for,
    input_fields,
    job_named_by,
)
from bot.testing.providers.kie import FakeKie, _field_problems, _kie_problems
from tests.providers.helpers import (
    ADAPTERS,
    MOCK_KEY,
    NB2,
    PRO,
    PROMPT,
    Answers,
    SleepRecorder,
    assert_create_refused,
    assert_user_safe,
    fake_fixture,
    image_bytes,
    picture_size,
    ref,
    req,
    run_to_end,
    valid_requests,
)

FLAVOURS = ("kie", "sinancode")
kie_only = pytest.mark.parametrize("fake", ["kie"], indirect=True)
sinancode_only = pytest.mark.parametrize("fake", ["sinancode"], indirect=True)


fake = fake_fixture(*FLAVOURS)


@pytest.fixture
def provider(fake: FakeKie, client: httpx.AsyncClient, sleeps: SleepRecorder) -> Provider:
    return ADAPTERS[fake.flavour].connect(fake, client, sleeps)


def sent_fields(fake: FakeKie, index: int = 0) -> dict[str, Any]:
    """The generation fields of a create: Kie's ``input``, or sinancode's whole body."""
    body = fake.creates[index].json
    assert isinstance(body, dict)
    if fake.flavour == "kie":
        assert isinstance(body["input"], dict)
        return body["input"]
    return body


def test_an_unknown_flavour_is_refused() -> None:
    # Each flavour is its own class (SinancodeProvider subclasses KieProvider): a name no class
    # declares is refused by the registry.
    with pytest.raises(UnknownProviderError):
        provider_class("kei")


# --- what the provider sends ---------------------------------------------------------------------


async def test_the_handle_records_when_it_was_submitted(provider: Provider, fake: FakeKie) -> None:
    before = time.time()
    handle = await provider.submit(req())
    assert before <= handle.extra["submitted_at"] <= time.time()
    if fake.flavour == "kie":
        assert handle.provider_job_id.startswith("task_nano-banana-2_")


async def test_full_nb2_request(provider: Provider, fake: FakeKie) -> None:
    refs = tuple(ref(n, "image/webp" if n % 2 else "image/jpeg") for n in range(14))
    await provider.submit(
        req(reference_images=refs, aspect_ratio="auto", resolution="4K", output_format="png", web_search=True)
    )
    assert sent_fields(fake) == {
        "prompt": PROMPT,
        "image_input": [f"https://cdn.example.test/ref-{n}.png" for n in range(14)],
        "aspect_ratio": "auto",
        "resolution": "4K",
        "output_format": "png",
        "google_search": True,
    }


@kie_only
async def test_pro_on_kie(provider: Provider, fake: FakeKie) -> None:
    refs = tuple(ref(n) for n in range(8))
    await provider.submit(req(PRO, reference_images=refs, aspect_ratio="21:9", resolution="2K", output_format="jpg"))
    assert fake.creates[0].json == {
        "model": "nano-banana-pro",
        "input": {
            "prompt": PROMPT,
            "image_input": [r.url for r in refs],
            "aspect_ratio": "21:9",
            "resolution": "2K",
            "output_format": "jpg",
        },
    }


@sinancode_only
async def test_sinancode_offers_no_pro(provider: Provider, fake: FakeKie) -> None:
    with pytest.raises(InvalidRequestError) as info:
        await provider.submit(req(PRO))
    assert "Nano Banana 2" in info.value.user_message
    assert fake.requests == []


# --- what the provider makes of each outcome -----------------------------------------------------

# Failures beyond the common two (content_blocked, transient_failure: tests/contract), in other words.
JOB_FAILURES: dict[str, ErrorCategory] = {
    "fail_policy": ErrorCategory.CONTENT_BLOCKED,
    "fail_generic": ErrorCategory.TRANSIENT,
    "fail_bad_input": ErrorCategory.BAD_INPUT,
    "success_no_urls": ErrorCategory.NO_IMAGE,
}


@pytest.mark.parametrize("outcome", sorted(JOB_FAILURES))
async def test_failures_in_other_words(provider: Provider, fake: FakeKie, outcome: str) -> None:
    fake.script(outcome)
    handle = await provider.submit(req())
    updates = await run_to_end(provider, handle)
    assert [u.status for u in updates] == [UpdateStatus.QUEUED, UpdateStatus.RUNNING, UpdateStatus.FAILED]
    final = updates[-1]
    assert final.error_category is JOB_FAILURES[outcome]
    assert final.images == []
    assert_user_safe(final.error_message, fake)
    assert final.error_detail and fake.api_key not in final.error_detail
    assert handle.provider_job_id in final.error_detail


async def test_success_reports_the_generation_time(provider: Provider, fake: FakeKie) -> None:
    handle = await provider.submit(req(aspect_ratio="16:9"))
    final = (await run_to_end(provider, handle))[-1]
    assert final.usage == ({"cost_time_ms": 8123} if fake.flavour == "kie" else {})
    assert fake.jobs[handle.provider_job_id].polls == 3


@sinancode_only
async def test_result_as_strings(provider: Provider, fake: FakeKie) -> None:
    fake.script("result_strings")
    handle = await provider.submit(req())
    final = (await run_to_end(provider, handle))[-1]
    assert final.status is UpdateStatus.SUCCEEDED
    assert [i.url for i in final.images] == [
        f"{fake.image_base_url}/{fake.jobs[handle.provider_job_id].image_names[0]}.png"
    ]


@sinancode_only
@pytest.mark.parametrize("outcome", ["result_type_png", "result_type_mime"])
async def test_a_result_typed_by_its_file_format_is_the_image(
    provider: Provider, fake: FakeKie, client: httpx.AsyncClient, outcome: str
) -> None:
    # docs/providers.md 4.2 types `result[].type` as "<string>": an entry typed "png" or "image/png" is the image
    # the task was billed for. It used to be dropped, and the member read "no image came back".
    fake.script(outcome)
    handle = await provider.submit(req())
    final = (await run_to_end(provider, handle))[-1]
    assert (final.status, final.error_category) == (UpdateStatus.SUCCEEDED, None)
    (image,) = final.images
    assert image.url == f"{fake.image_base_url}/{fake.jobs[handle.provider_job_id].image_names[0]}.png"
    assert picture_size(await image_bytes(image, client)) == (1024, 1024)


@kie_only
async def test_record_lagging_its_creation_reads_as_queued(provider: Provider, fake: FakeKie) -> None:
    fake.script("record_null_first")
    handle = await provider.submit(req())
    updates = await run_to_end(provider, handle)
    assert [u.status for u in updates] == [
        UpdateStatus.QUEUED,  # "recordInfo is null", seconds after the create
        UpdateStatus.QUEUED,
        UpdateStatus.RUNNING,
        UpdateStatus.SUCCEEDED,
    ]


async def test_not_found_soon_after_the_create_means_not_visible_yet(provider: Provider, fake: FakeKie) -> None:
    old = JobHandle(provider=fake.flavour, model=NB2, provider_job_id="task_gone", extra={"submitted_at": 1.0})
    update = await provider.poll(old)
    assert (update.status, update.error_category) == (UpdateStatus.FAILED, ErrorCategory.TRANSIENT)
    assert_user_safe(update.error_message, fake)
    assert len(fake.requests) == 1  # not retried
    fresh = old.model_copy(update={"extra": {"submitted_at": time.time()}})
    assert (await provider.poll(fresh)).status is UpdateStatus.QUEUED


# --- create failures and retries -----------------------------------------------------------------

# outcome -> (error raised or None for success, creates, jobs made)
KIE_CREATE_OUTCOMES: dict[str, tuple[type[ProviderError] | None, int, int]] = {
    "http200:401": (AuthError, 1, 0),
    "http200:402": (OutOfCreditError, 1, 0),
    "http200:404": (AuthError, 1, 0),
    "http200:422": (BadInputError, 1, 0),
    "http200:429": (None, 2, 1),
    "http200:455": (TransientError, 1, 0),
    "http200:500": (None, 2, 1),
    "http200:501": (None, 2, 1),
    "http200:505": (AuthError, 1, 0),
    "http200_code_error": (OutOfCreditError, 1, 0),
    "maintenance_455": (TransientError, 1, 0),
    "generation_failed_501": (None, 2, 1),
    "feature_disabled_505": (AuthError, 1, 0),
}
CATEGORIES = {
    AuthError: ErrorCategory.AUTH,
    OutOfCreditError: ErrorCategory.OUT_OF_CREDIT,
    BadInputError: ErrorCategory.BAD_INPUT,
    TransientError: ErrorCategory.TRANSIENT,
}


@kie_only
@pytest.mark.parametrize("outcome", sorted(KIE_CREATE_OUTCOMES))
async def test_kie_envelope_codes_decide(
    provider: Provider, fake: FakeKie, sleeps: SleepRecorder, outcome: str
) -> None:
    error_type, creates, jobs = KIE_CREATE_OUTCOMES[outcome]
    fake.script(outcome)
    if error_type is None:
        handle = await provider.submit(req())
        assert list(fake.jobs) == [handle.provider_job_id]
        assert len(sleeps.delays) == creates - 1
    else:
        with pytest.raises(error_type) as info:
            await provider.submit(req())
        error = info.value
        assert type(error) is error_type or error_type is TransientError
        assert error.category is CATEGORIES[error_type] and error.provider == fake.flavour
        assert_user_safe(error.user_message, fake)
        assert fake.api_key not in error.detail
        assert sleeps.delays == []  # refusals are not retried
    assert len(fake.creates) == creates and len(fake.jobs) == jobs


# --- check ---------------------------------------------------------------------------------------


@kie_only
async def test_check_reports_an_empty_balance(provider: Provider, fake: FakeKie) -> None:
    fake.credits = 0
    result = await provider.check()
    assert result.key_accepted is True and "0 credits" in result.detail and "402" in result.detail


# --- the fake's own protocol details -------------------------------------------------------------


@kie_only
async def test_fake_kie_protocol(fake: FakeKie, client: httpx.AsyncClient) -> None:
    assert fake.base_url == fake.origin
    create = f"{fake.base_url}/api/v1/jobs/createTask"
    missing = await client.post(create, json={})
    assert missing.status_code == 401
    assert missing.json() == {"code": 401, "msg": "You do not have access permissions", "data": None}
    auth = {"Authorization": f"Bearer {fake.api_key}"}
    bad = await client.post(
        create,
        headers=auth,
        json={"model": "nano-banana-pro", "input": {"prompt": "", "google_search": True}},
    )
    assert bad.status_code == 200 and bad.json()["code"] == 422  # validation rides in a 200
    assert "input.prompt" in bad.json()["msg"] and "google_search" in bad.json()["msg"]
    model = await client.post(create, headers=auth, json={"model": "nano-banana-9", "input": {"prompt": "x"}})
    assert model.json()["code"] == 422
    ok = await client.post(create, headers=auth, json={"model": "nano-banana-2", "input": {"prompt": "x"}})
    task_id = ok.json()["data"]["taskId"]
    assert ok.json()["code"] == 200 and task_id in fake.jobs
    record = await client.get(f"{fake.base_url}/api/v1/jobs/recordInfo", params={"taskId": task_id}, headers=auth)
    data = record.json()["data"]
    assert record.json()["message"] == "success" and data["state"] == "waiting"
    assert '"prompt": "x"' in data["param"] and data["resultJson"] == ""
    unknown = await client.get(f"{fake.base_url}/api/v1/jobs/recordInfo", params={"taskId": "t"}, headers=auth)
    assert unknown.status_code == 200
    assert unknown.json() == {"code": 422, "message": "recordInfo is null", "data": None}
    credit = await client.get(f"{fake.base_url}/api/v1/chat/credit", headers=auth)
    assert credit.json() == {"code": 200, "msg": "success", "data": 1000.0}


@sinancode_only
async def test_fake_sinancode_protocol(fake: FakeKie, client: httpx.AsyncClient) -> None:
    assert fake.base_url == f"{fake.origin}/v1"
    missing = await client.post(f"{fake.base_url}/generate/k/nano-banana-2", json={"prompt": "x"})
    assert missing.status_code == 401
    auth = {"Authorization": f"Bearer {fake.api_key}"}
    pro = await client.post(f"{fake.base_url}/generate/k/nano-banana-pro", json={"prompt": "x"}, headers=auth)
    assert pro.status_code == 404  # a Pro endpoint is not documented
    bad = await client.post(
        f"{fake.base_url}/generate/k/nano-banana-2",
        json={"prompt": "x", "image_input": [""], "resolution": "512"},
        headers=auth,
    )
    assert bad.status_code == 400 and "image_input" in bad.json()["error_msg"]
    ok = await client.post(f"{fake.base_url}/generate/k/nano-banana-2", json={"prompt": "x"}, headers=auth)
    task_id = ok.json()["task_id"]
    status = await client.get(f"{fake.base_url}/tasks/{task_id}", headers=auth)
    assert status.json() == {
        "id": task_id,
        "status": "pending",
        "error_code": "",
        "error_msg": "",
        "result": None,
    }
    unknown = await client.get(f"{fake.base_url}/tasks/nope", headers=auth)
    assert unknown.status_code == 404


def test_fake_refuses_the_other_flavours_outcomes() -> None:
    with pytest.raises(ValueError, match="sinancode"):
        FakeKie(flavour="sinancode").script("http200_code_error")
    with pytest.raises(ValueError, match="kie"):
        FakeKie(flavour="kie").script("result_strings")
    with pytest.raises(ValueError):
        FakeKie(flavour="other")  # type: ignore[arg-type]


# --- property: what validate() lets through is what the documented schema accepts ----------------


# Built once, not per example (building and validating a fresh strategy cost more than the example): either model,
# then a request for it, as drawing the model first and then its request did.
_KIE_REQUESTS = st.one_of(
    [st.tuples(st.just(caps), valid_requests(caps)) for caps in (KIE_MODELS[NB2], KIE_MODELS[PRO])]
)


@settings(max_examples=150, deadline=None)
@given(drawn=_KIE_REQUESTS)
def test_every_valid_request_fits_the_documented_schema(drawn: tuple[Capabilities, GenerationRequest]) -> None:
    caps, request = drawn
    validate(request, caps)
    fields = input_fields(request, caps)
    assert _kie_problems({"model": caps.provider_model, "input": fields}) == []
    if caps.model in SINANCODE_MODELS:
        assert _field_problems(caps.provider_model, fields) == []  # the same fields, flattened
    assert fields["resolution"] == (request.resolution or "1K")
    assert ("google_search" in fields) is request.web_search
    assert len(fields.get("image_input", [])) == len(request.reference_images)
    assert None not in fields.values()


# --- narrow parser cases the fake does not produce (httpx.MockTransport) -------------------------

A_PNG = "https://c.test/a.png"


def mock_provider(flavour: str, answers: Answers) -> Provider:
    return ADAPTERS[flavour].over_mock(answers)


def handle_for(flavour: str) -> JobHandle:
    return JobHandle(provider=flavour, model=NB2, provider_job_id="t1")


def record(**data: Any) -> httpx.Response:
    return httpx.Response(200, json={"code": 200, "message": "success", "data": {"taskId": "t1", **data}})


@pytest.mark.parametrize(
    ("answer", "expected", "urls"),
    [
        # resultJson already decoded into an object is read the same way.
        (record(state="success", resultJson={"resultUrls": [A_PNG]}), UpdateStatus.SUCCEEDED, 1),
        # Non-web URLs are kept: the download step refuses them with a message naming the scheme.
        (record(state="success", resultJson='{"resultUrls":["data:image/png;base64,AA"]}'),
         UpdateStatus.SUCCEEDED, 1),
        # An unreadable resultJson on a success fails the job as transient, not forever-polling.
        (record(state="success", resultJson="{not json"), UpdateStatus.FAILED, 0),
        # So does one nested past what the JSON parser recurses.
        (record(state="success", resultJson="[" * 100_000), UpdateStatus.FAILED, 0),
        (record(state="queuing"), UpdateStatus.QUEUED, 0),
        # A state the docs do not list keeps the job running.
        (record(state="paused"), UpdateStatus.RUNNING, 0),
        # failCode/failMsg may be null.
        (record(state="fail", failCode=None, failMsg=None), UpdateStatus.FAILED, 0),
    ],
)  # fmt: skip
async def test_kie_record_shapes(answer: httpx.Response, expected: UpdateStatus, urls: int) -> None:
    update = await mock_provider("kie", Answers(poll=[answer])).poll(handle_for("kie"))
    assert update.status is expected and len(update.images) == urls
    if expected is UpdateStatus.FAILED:
        assert update.error_message and "http" not in update.error_message


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(200, json={"code": 200, "message": "success", "data": None}),
        httpx.Response(200, json={"code": 200, "message": "success", "data": {"taskId": "t1"}}),
        httpx.Response(200, json={"no": "envelope"}),
        httpx.Response(200, content=b"[" * 100_000 + b"]" * 100_000),  # nested past the parser
    ],
)
async def test_kie_unreadable_records_raise_transient(answer: httpx.Response) -> None:
    with pytest.raises(TransientError):
        await mock_provider("kie", Answers(poll=[answer])).poll(handle_for("kie"))


def task(**body: Any) -> httpx.Response:
    return httpx.Response(200, json={"id": "t1", "error_code": "", "error_msg": "", **body})


@pytest.mark.parametrize(
    ("answer", "expected", "category", "urls"),
    [
        (task(status="queued"), UpdateStatus.QUEUED, None, 0),
        (task(status="WAITING"), UpdateStatus.QUEUED, None, 0),
        (task(status="Processing"), UpdateStatus.RUNNING, None, 0),
        # Mixed result entries: only image URLs count.
        (task(status="completed", result=[{"type": "video", "url": "https://c.test/v.mp4"}, A_PNG,
                                          {"type": "image", "url": "data:x"}, {"url": A_PNG}, 7]),
         UpdateStatus.SUCCEEDED, None, 2),
        (task(status="succeeded", result=A_PNG), UpdateStatus.SUCCEEDED, None, 1),
        (task(status="failed", error_code="content_blocked"),
         UpdateStatus.FAILED, ErrorCategory.CONTENT_BLOCKED, 0),
        (task(status="failed", error_code="x", error_msg="Your image was flagged by moderation"),
         UpdateStatus.FAILED, ErrorCategory.CONTENT_BLOCKED, 0),
        (task(status="canceled"), UpdateStatus.CANCELLED, ErrorCategory.CANCELLED, 0),
        # An enveloped variant is unwrapped.
        (httpx.Response(200, json={"data": {"status": "processing"}}), UpdateStatus.RUNNING, None, 0),
    ],
)  # fmt: skip
async def test_sinancode_task_shapes(
    answer: httpx.Response, expected: UpdateStatus, category: ErrorCategory | None, urls: int
) -> None:
    update = await mock_provider("sinancode", Answers(poll=[answer])).poll(handle_for("sinancode"))
    assert (update.status, update.error_category, len(update.images)) == (expected, category, urls)


@pytest.mark.parametrize(
    "answer",
    [httpx.Response(200, json={"id": "t1"}), httpx.Response(200, json=["x"]), httpx.Response(200, text="")],
)
async def test_sinancode_unreadable_tasks_raise_transient(answer: httpx.Response) -> None:
    with pytest.raises(TransientError):
        await mock_provider("sinancode", Answers(poll=[answer])).poll(handle_for("sinancode"))


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(200, json={"code": 200, "msg": "success", "data": {}}),
        httpx.Response(200, json={"status": "ok"}),
        httpx.Response(504, text="gateway timeout"),
        httpx.Response(200, json={"code": 504, "msg": "Gateway timeout", "data": None}),
        # A task id the bot cannot follow: far too long to store and send, or with control characters.
        httpx.Response(200, json={"code": 200, "msg": "success", "data": {"taskId": "t" * 100_000}}),
        httpx.Response(200, json={"code": 200, "msg": "success", "data": {"taskId": "t1\n\x1b[2J"}}),
    ],
)
async def test_create_answers_that_may_have_been_accepted_are_uncertain(flavour: str, answer: httpx.Response) -> None:
    answers = Answers(create=[answer])
    with pytest.raises(SubmitUncertainError):
        await mock_provider(flavour, answers).submit(req())
    assert len(answers.calls) == 1


@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_html_502_without_envelope_is_retried_then_transient(flavour: str) -> None:
    answers = Answers(create=[httpx.Response(502, text="<html>Bad gateway</html>")])
    with pytest.raises(TransientError):
        await mock_provider(flavour, answers).submit(req())
    assert len(answers.calls) == 2


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize(
    ("answer", "error_type"),
    [
        (httpx.Response(403, json={"message": "Insufficient balance"}), OutOfCreditError),
        (httpx.Response(403, json={"message": "IP not allowed"}), AuthError),
        (httpx.Response(404, json={"message": "Not Found"}), AuthError),
        (httpx.Response(413, json={"error_msg": "Payload too large"}), BadInputError),
    ],
)
async def test_create_status_mapping(flavour: str, answer: httpx.Response, error_type: type[ProviderError]) -> None:
    await assert_create_refused(mock_provider(flavour, Answers(create=[answer])), error_type)


async def test_kie_long_retry_after_is_handed_to_the_runner() -> None:
    slow = httpx.Response(200, headers={"Retry-After": "600"}, json={"code": 429, "msg": "Rate limited"})
    answers = Answers(create=[slow])
    with pytest.raises(RateLimitedError) as info:
        await mock_provider("kie", answers).submit(req())
    assert info.value.retry_after == 600.0 and len(answers.calls) == 1


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        # The envelope decides: HTTP 200 with code 401 is a rejected key (a bare status probe would say OK).
        (httpx.Response(200, json={"code": 401, "msg": "You do not have access permissions"}), (True, False)),
        (httpx.Response(401, json={"code": 401, "msg": "You do not have access permissions"}), (True, False)),
        (httpx.Response(200, json={"code": 200, "msg": "success", "data": "lots"}), (True, True)),
        (httpx.Response(500, text="oops"), (True, None)),
    ],
)
async def test_kie_check_reads_the_envelope(answer: httpx.Response, expected: tuple[bool, bool | None]) -> None:
    result = await mock_provider("kie", Answers(poll=[answer])).check()
    assert (result.reachable, result.key_accepted) == expected
    assert MOCK_KEY not in result.detail


# --- tracing a task back to its job (a create whose answer was lost: bot/lost_tasks.py) --------------


CALLBACK_BASE = "http://bananacord.example/callbacks/kie"


def calling_back(fake: FakeKie, client: httpx.AsyncClient, sleeps: SleepRecorder) -> KieProvider:
    """The Kie adapter against ``fake`` with callbacks on (to a host the fake cannot reach)."""
    return KieProvider(
        callback_url=CALLBACK_BASE, api_key=fake.api_key, base_url=fake.base_url, client=client, sleep=sleeps
    )


@kie_only
async def test_a_task_is_traced_to_the_job_its_create_named_by_asking_kie_with_the_key(
    fake: FakeKie, client: httpx.AsyncClient, sleeps: SleepRecorder
) -> None:
    """The job's id rides in callBackUrl; recordInfo's ``param`` (the create body as sent) gives it back. A
    task created with another deployment's callBackUrl, or none, names no job of this bot's."""
    fake.callback_default = "lost"  # the fake would call a host that does not exist
    kie = calling_back(fake, client, sleeps)
    assert isinstance(kie, FindsLostTasks) and kie.finds_lost_tasks
    handle = await kie.submit(req(), job_id="5f0c2a91d3e4b7a8")
    assert fake.creates[0].json["callBackUrl"] == f"{CALLBACK_BASE}?job=5f0c2a91d3e4b7a8"
    assert await kie.task_owner(handle.provider_job_id) == "5f0c2a91d3e4b7a8"

    elsewhere = KieProvider(
        callback_url="http://other-bot.example/callbacks/kie",
        api_key=fake.api_key,
        base_url=fake.base_url,
        client=client,
    )
    foreign = await elsewhere.submit(req(), job_id="5f0c2a91d3e4b7a8")
    assert await kie.task_owner(foreign.provider_job_id) is None
    plain = await KieProvider(api_key=fake.api_key, base_url=fake.base_url, client=client).submit(req())
    assert "callBackUrl" not in fake.creates[-1].json
    assert await kie.task_owner(plain.provider_job_id) is None

    adopted = kie.adopted_handle(handle.provider_job_id, req())
    assert (adopted.provider, adopted.model, adopted.provider_job_id) == ("kie", handle.model, handle.provider_job_id)
    update = await kie.poll(adopted)
    assert update.status in (UpdateStatus.QUEUED, UpdateStatus.RUNNING, UpdateStatus.SUCCEEDED)


@kie_only
async def test_a_kie_that_refuses_a_callback_url_with_a_query_gets_it_plain_and_nothing_is_traced(
    fake: FakeKie, client: httpx.AsyncClient, sleeps: SleepRecorder, caplog: pytest.LogCaptureFixture
) -> None:
    """Whether Kie takes a query in callBackUrl is not documented. If it refuses one (a validation error:
    nothing made), the create goes again without it and callbacks keep working; only tracing stops."""
    fake.refuse_callback_query = True
    fake.callback_default = "lost"
    kie = calling_back(fake, client, sleeps)
    handle = await kie.submit(req(), job_id="5f0c2a91d3e4b7a8")
    assert [c.json["callBackUrl"] for c in fake.creates] == [f"{CALLBACK_BASE}?job=5f0c2a91d3e4b7a8", CALLBACK_BASE]
    assert list(fake.jobs) == [handle.provider_job_id], "one task made"
    assert not kie.finds_lost_tasks
    assert sum("refused a callBackUrl carrying the job's id" in r.getMessage() for r in caplog.records) == 1
    await kie.submit(req(), job_id="9a8b7c6d5e4f3a2b")
    assert len(fake.creates) == 3 and fake.creates[-1].json["callBackUrl"] == CALLBACK_BASE


@kie_only
async def test_a_refused_create_whose_callback_url_had_no_query_is_not_sent_again(
    fake: FakeKie, client: httpx.AsyncClient, sleeps: SleepRecorder
) -> None:
    kie = calling_back(fake, client, sleeps)
    fake.script("http200:422")
    with pytest.raises(BadInputError):
        await kie.submit(req(), job_id="5f0c2a91d3e4b7a8")
    assert len(fake.creates) == 1 and kie.finds_lost_tasks


@kie_only
async def test_a_task_kie_does_not_know_is_no_job_of_ours(
    fake: FakeKie, client: httpx.AsyncClient, sleeps: SleepRecorder
) -> None:
    """recordInfo's "recordInfo is null" (a task of another account, or none): a definite no."""
    kie = calling_back(fake, client, sleeps)
    assert await kie.task_owner("task_nano-banana-2_0000000000000") is None
    assert fake.requests[-1].path.endswith("/recordInfo")


@kie_only
async def test_a_kie_that_cannot_be_asked_whose_task_it_is_raises(
    fake: FakeKie, client: httpx.AsyncClient, sleeps: SleepRecorder
) -> None:
    kie = KieProvider(
        callback_url=CALLBACK_BASE, api_key="sk-not-the-key-41", base_url=fake.base_url, client=client, sleep=sleeps
    )
    with pytest.raises(AuthError) as raised:
        await kie.task_owner("task_nano-banana-2_0000000000000")
    assert "sk-not-the-key-41" not in f"{raised.value.user_message} {raised.value.detail}"


async def test_without_callbacks_no_kie_flavour_traces_tasks(client: httpx.AsyncClient) -> None:
    assert not KieProvider(api_key=MOCK_KEY, client=client).finds_lost_tasks
    # sinancode's NB2 endpoint is not documented to take callBackUrl: never sent, nothing to trace by.
    assert not SinancodeProvider(callback_url=CALLBACK_BASE, api_key=MOCK_KEY, client=client).finds_lost_tasks


@settings(max_examples=200, deadline=None)
@given(
    base=st.sampled_from([CALLBACK_BASE, f"{CALLBACK_BASE}?deployment=eu", "https://b.example:8443/x/callbacks/kie"]),
    job_id=st.text(min_size=1, max_size=40).filter(lambda s: s.strip() == s),
)
def test_a_job_id_put_in_a_callback_url_is_read_back_and_only_under_that_url(base: str, job_id: str) -> None:
    url = callback_url_for(base, job_id)
    assert job_named_by(url, base) == job_id
    assert job_named_by(url, "http://other.example/callbacks/kie") is None
    assert job_named_by(base, base) is None
    assert job_named_by(f"{url}&job=another", base) is None, "two job ids name no one job"
