"""A fake Kie.ai market API, or the sinancode proxy in front of it, over a real socket (docs/providers.md 4).

``FakeKie(flavour="kie")`` speaks Kie's protocol: ``POST /api/v1/jobs/createTask``,
``GET /api/v1/jobs/recordInfo?taskId=...`` and ``GET /api/v1/chat/credit``, Bearer auth, and the
``{code, msg|message, data}`` envelope on every answer (create answers say ``msg``, recordInfo says
``message``, as the docs do). Validation problems and unknown tasks come back as HTTP 200 with an error
``code``, as Kie clients report ([S]: ``{"code":422,"msg":"recordInfo is null"}``); scripted gateway
failures mirror the code in the HTTP status, and ``http200:CODE`` puts any documented code in a 200.

``FakeKie(flavour="sinancode")`` speaks sinancode's: ``POST /v1/generate/k/nano-banana-2`` with the
fields flattened -> ``{"task_id"}``, ``GET /v1/tasks/{id}`` -> ``{id, status, error_code, error_msg,
result}``. Its queued status name and error bodies are [U]; the fake uses ``pending`` and the three
body keys a client reads (``message``, ``error_msg``, ``error_code``).

Configure the adapter with ``fake.base_url`` (Kie: the origin; sinancode: origin + ``/v1``). Generated
files are real PNGs sized by the requested ratio and resolution, served at ``/files/{name}.png``.

Outcomes, one per create attempt (unscripted creates get "success"). Common to both flavours:
  success             waiting/queuing -> generating -> success (sinancode: pending -> processing ->
                      completed) with one PNG; sinancode's ``result`` is ``[{type, url}]``
  bad_input           the create is refused as invalid, no task (Kie: HTTP 422 + code 422;
                      sinancode: HTTP 400 + error_code/error_msg)
  content_blocked     the task fails with policy wording (Kie: state fail, failCode 400, failMsg
                      "...violates our content policy"; sinancode: failed, content_policy_violation)
  rate_limited        the create is answered 429 once (Kie: code 429, no Retry-After; sinancode:
                      Retry-After: 1), no task; the next attempt takes the next outcome
  server_error        the create is answered 500 (Kie, code 500) / 503 (sinancode) once, no task
  auth                the create is answered 401 as for a rejected key, no task
  out_of_credit       the create is answered 402 (Kie: code 402 "Credits insufficient"; sinancode:
                      insufficient_balance), no task
  transient_failure   the task fails for an internal reason (Kie: failCode 500; sinancode: error_code
                      internal_error with an empty error_msg, so clients must fall back to the code)
  never_finish        generating / processing forever
  undecodable_image   success, but the file is not an image
  create_hang         the task is made, then the create never answers (until stop())
  malformed           every poll answer is 200 with non-JSON bytes
Also for both:
  fail_policy         fails with other policy wording (Kie: failMsg "...sensitive (NSFW)..." and no
                      failCode; sinancode: only error_code nsfw_detected)
  fail_generic        fails with no code and no message at all
  fail_bad_input      fails because a reference image could not be downloaded
  success_no_urls     finishes successfully with an empty result list
  poll_500            the first poll is answered 500; later polls are normal
Kie only:
  http200:CODE        HTTP 200 carrying envelope code CODE (401 402 404 422 429 455 500 501 505) on the
                      create; no task. 429 and 5xx answers happen once, then the next outcome applies
  http200_code_error  the same as http200:402: a client that only checks HTTP thinks it was accepted
  maintenance_455     the create is answered 455 (code 455, maintenance), no task
  generation_failed_501  the create is answered 501 (code 501) once, no task
  feature_disabled_505   the create is answered 505 (code 505), no task
  record_null_first   the first poll says ``{"code":422,"msg":"recordInfo is null"}`` (the record lags
                      its creation); later polls are normal
sinancode only:
  result_strings      success, with ``result`` as ``string[]`` (the older documented shape)
  result_type_png     success, the entry typed "png" rather than "image" (``type``'s values are [U])
  result_type_mime    success, the entry typed "image/png"

Time mode (``provider_time=``, see bot/testing/providers/_base.py): a task is waiting/queuing until its
queue time has passed, generating until ``ready_at``, then done, however often it is polled; recordInfo's
``costTime`` is then the generation time in ms. Kie documents no progress field on recordInfo, so
there is none.

Callbacks (Kie flavour): a createTask body with ``callBackUrl`` makes the fake POST the finished task
record, ``{"code": 200, "msg": "success", "data": <recordInfo's data>}``, to that URL when the task
succeeds or fails: at ``ready_at`` in time mode, in poll mode when a poll first reports it done. With
``webhook_hmac_key`` the request carries Kie's signature headers (docs.kie.ai/common-api/webhook-
verification): ``X-Webhook-Timestamp`` (Unix seconds) and ``X-Webhook-Signature`` =
base64(HMAC-SHA256(taskId + "." + timestamp, key)); without a key, neither header. Per task, in order
of the creates that carry a callBackUrl (afterwards ``callback_default``, "normal"), ``script_callbacks``
chooses: normal, lost (never sent), bad_signature (signed with another key), twice (the same signed
request again once the first is answered: a replay), late:SECONDS (sent that long after the task
finished). Every attempt is kept in ``callbacks`` with the status the receiver answered, or the error
if it could not be reached; delivery failures are never raised. "malformed" tasks call back with
non-JSON bytes, "never_finish" ones never. With ``refuse_callback_query`` the fake refuses a create whose
``callBackUrl`` has a query (code 422, nothing made): whether the real Kie takes one is not documented.

Run standalone with the other fakes: ``python -m bot.testing.providers``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import re
import time
import uuid
from collections import deque
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Unpack, get_args

import aiohttp
from aiohttp import web

from bot.testing.providers._base import (
    COMMON_OUTCOMES,
    FakeProviderServer,
    JobTimes,
    ServerOptions,
    State,
    garbage,
    pixel_size,
)

__all__ = [
    "CALLBACK_MODES",
    "KIE_OUTCOMES",
    "SINANCODE_OUTCOMES",
    "FakeKie",
    "FakeKieJob",
    "SentCallback",
    "kie_image_size",
    "kie_signature",
]

Flavour = Literal["kie", "sinancode"]

# --- what a test can script ----------------------------------------------------------------------

_SHARED_EXTRA = frozenset({"fail_policy", "fail_generic", "fail_bad_input", "success_no_urls", "poll_500"})
# docs/providers.md 4.1: the documented envelope codes besides 200, with illustrative messages ([U] wording).
_KIE_CODES: dict[int, str] = {
    401: "You do not have access permissions",
    402: "Credits insufficient",
    404: "Not found",
    422: "Validation error: the request parameters failed validation",
    429: "Rate limited, please try again later",
    455: "Service unavailable: the system is under maintenance",
    500: "Server error",
    501: "Generation failed",
    505: "Feature disabled",
}
KIE_OUTCOMES: frozenset[str] = (
    COMMON_OUTCOMES
    | _SHARED_EXTRA
    | {f"http200:{code}" for code in _KIE_CODES}
    | {
        "http200_code_error",
        "maintenance_455",
        "generation_failed_501",
        "feature_disabled_505",
        "record_null_first",
    }
)
# sinancode outcome -> the `type` its result entries carry (docs/providers.md 4.2: "<string>", values [U]).
_SC_RESULT_TYPES: dict[str, str] = {"result_type_png": "png", "result_type_mime": "image/png"}
SINANCODE_OUTCOMES: frozenset[str] = COMMON_OUTCOMES | _SHARED_EXTRA | {"result_strings", *_SC_RESULT_TYPES}

# Kie create outcome -> (HTTP status, envelope code); no task is made.
_KIE_CREATE_FAILURES: dict[str, tuple[int, int]] = {
    "bad_input": (422, 422),
    "rate_limited": (429, 429),
    "server_error": (500, 500),
    "auth": (401, 401),
    "out_of_credit": (402, 402),
    "maintenance_455": (455, 455),
    "generation_failed_501": (501, 501),
    "feature_disabled_505": (505, 505),
    "http200_code_error": (200, 402),
    **{f"http200:{code}": (200, code) for code in _KIE_CODES},
}
# sinancode create outcome -> (HTTP status, body, headers); all [U] beyond "message || error_msg ||
# error_code", which is what a client reads (docs/providers.md 4.2).
_SC_CREATE_FAILURES: dict[str, tuple[int, dict[str, str], dict[str, str]]] = {
    "bad_input": (400, {"error_code": "invalid_request", "error_msg": "Invalid request parameters"}, {}),
    "rate_limited": (429, {"message": "Too many requests"}, {"Retry-After": "1"}),
    "server_error": (503, {"message": "Service temporarily unavailable"}, {}),
    "auth": (401, {"message": "Invalid token"}, {}),
    "out_of_credit": (402, {"error_code": "insufficient_balance", "error_msg": "Insufficient balance"}, {}),
}
# Task failures: outcome -> ((Kie failCode, failMsg), (sinancode error_code, error_msg)). [U] wording.
_FAILURES: dict[str, tuple[tuple[str, str], tuple[str, str]]] = {
    "content_blocked": (
        ("400", "The content you submitted violates our content policy."),
        ("content_policy_violation", "Your request was rejected by the safety system."),
    ),
    "fail_policy": (
        ("", "Prompt flagged as sensitive (NSFW); generation refused."),
        ("nsfw_detected", ""),
    ),
    "transient_failure": (
        ("500", "Internal error, please try again later."),
        ("internal_error", ""),
    ),
    "fail_generic": (("", ""), ("", "")),
    "fail_bad_input": (
        ("422", "Failed to download image_input[0]: remote server answered 403"),
        ("image_download_failed", "Could not download the input image."),
    ),
}
# Outcomes whose task ends with a downloadable file.
_IMAGE_OUTCOMES = frozenset(
    {
        "success",
        "undecodable_image",
        "create_hang",
        "poll_500",
        "record_null_first",
        "result_strings",
        *_SC_RESULT_TYPES,
    }
)

# docs/providers.md 4.1 / 4.2 (== seed 003): the per-model schema.
_PRO_RATIOS = frozenset({"1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9", "auto"})
_NB2_RATIOS = _PRO_RATIOS | {"1:4", "1:8", "4:1", "8:1"}
_SCHEMAS: dict[str, dict[str, Any]] = {
    "nano-banana-2": {
        "max_prompt": 20000,
        "max_refs": 14,
        "ratios": _NB2_RATIOS,
        "default_ratio": "auto",
        "fields": {"prompt", "image_input", "aspect_ratio", "resolution", "output_format", "google_search"},
    },
    "nano-banana-pro": {  # Kie only; the schema snapshot [S] has no google_search
        "max_prompt": 10000,
        "max_refs": 8,
        "ratios": _PRO_RATIOS,
        "default_ratio": "1:1",
        "fields": {"prompt", "image_input", "aspect_ratio", "resolution", "output_format"},
    },
}
_RESOLUTIONS = frozenset({"1K", "2K", "4K"})
_FORMATS = frozenset({"jpg", "png"})
_SC_MODELS = frozenset({"nano-banana-2"})  # a sinancode Pro path is unseen [U]

# How a task's callback is delivered (besides "late:SECONDS"); see the module docstring.
CALLBACK_MODES: frozenset[str] = frozenset({"normal", "lost", "bad_signature", "twice"})
# Callbacks are fire-and-forget for Kie; a receiver that stalls must not hold the fake's tasks forever.
_CALLBACK_TIMEOUT = aiohttp.ClientTimeout(total=10.0)


def kie_signature(task_id: str, timestamp: int | str, key: str) -> str:
    """Kie's webhook signature: base64(HMAC-SHA256(taskId + "." + timestamp, key))."""
    digest = hmac.new(key.encode(), f"{task_id}.{timestamp}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def _callback_delay(mode: str) -> float:
    """Seconds after the task finished to send its callback; raises ValueError for an unknown mode."""
    if mode in CALLBACK_MODES:
        return 0.0
    name, _, seconds = mode.partition(":")
    if name == "late":
        with contextlib.suppress(ValueError):
            delay = float(seconds)
            if delay >= 0:
                return delay
    raise ValueError(f"unknown callback mode {mode!r}; use one of {sorted(CALLBACK_MODES)} or late:SECONDS")


@dataclass
class SentCallback:
    """One callback POST the fake made (a "twice" task makes two)."""

    task_id: str
    url: str
    mode: str
    headers: dict[str, str]
    body: bytes
    at: float  # when it was sent, wall clock
    status: int | None = None  # what the receiver answered; None if it could not be reached
    error: str | None = None  # why it could not be delivered

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class FakeKieJob(JobTimes):
    """A task the fake accepted. ``polls`` counts status requests, answered or not; the times
    (``created_at``, ``ready_at``) come from :class:`JobTimes`."""

    task_id: str
    model: str  # the provider's model id, e.g. "nano-banana-2"
    body: dict[str, Any]  # the create body as received
    fields: dict[str, Any]  # the generation fields: Kie's ``input``, or sinancode's whole body
    outcome: str
    created_ms: int
    polls: int = 0
    held: bool = False
    # Status answers given normally; drives queued -> running -> done.
    progress: int = 0
    image_names: list[str] = field(default_factory=list)
    # Kie flavour: where and how the finished record is POSTed (see the module docstring).
    callback_url: str | None = None
    callback_mode: str = "normal"
    callback_started: bool = False


def kie_image_size(model: str, fields: Mapping[str, Any], follows: tuple[int, int] | None = None) -> tuple[int, int]:
    """Pixel size for a task's fields: long side by resolution, shape by ratio, the model's documented
    default when none is sent (NB2 ``auto``, Pro 1:1). ``auto`` takes the shape of ``follows``, the first
    reference's size, as Google's model does without a ratio (docs/providers.md 6.2); square without one."""
    ratio = fields.get("aspect_ratio") or _SCHEMAS.get(model, _SCHEMAS["nano-banana-2"])["default_ratio"]
    return pixel_size(fields.get("resolution") or "1K", ratio, follows)


class FakeKie(FakeProviderServer[FakeKieJob]):
    """Kie's market API, or sinancode's proxy of it, on 127.0.0.1 (see the module docstring)."""

    OUTCOMES: ClassVar[frozenset[str]] = KIE_OUTCOMES | SINANCODE_OUTCOMES
    NAME: ClassVar[str] = "kie"

    def __init__(
        self,
        *,
        flavour: Flavour = "kie",
        api_key: str | None = None,
        credits: float = 1000.0,
        webhook_hmac_key: str | None = None,
        refuse_callback_query: bool = False,
        **options: Unpack[ServerOptions],
    ) -> None:
        if flavour not in get_args(Flavour):
            raise ValueError(f"unknown flavour {flavour!r}; use 'kie' or 'sinancode'")
        super().__init__(api_key=api_key or f"test-{flavour}-key", **options)
        self.flavour: Flavour = flavour
        self.credits = credits  # what Kie's credit endpoint reports
        self._seq = 0
        # Callbacks: signed with this key when set (as Kie does once the key is enabled in its settings).
        self.webhook_hmac_key = webhook_hmac_key
        # Whether Kie takes a callBackUrl with a query is not documented: this plays the Kie that does not.
        self.refuse_callback_query = refuse_callback_query
        self.callback_default = "normal"
        self.callbacks: list[SentCallback] = []
        self._callback_modes: deque[str] = deque()
        self._session: aiohttp.ClientSession | None = None
        self._background: set[asyncio.Task[None]] = set()

    async def stop(self) -> None:
        # The server first, so no poll handler starts a callback after the pending ones are cancelled.
        await super().stop()
        tasks, self._background = self._background, set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    @property
    def outcomes(self) -> frozenset[str]:
        """The outcomes this flavour can script."""
        return KIE_OUTCOMES if self.flavour == "kie" else SINANCODE_OUTCOMES

    @property
    def base_url(self) -> str:
        """What to configure as the provider's base URL (Kie: the origin; sinancode: origin + /v1)."""
        return self.origin if self.flavour == "kie" else f"{self.origin}/v1"

    def add_routes(self, router: web.UrlDispatcher) -> None:
        if self.flavour == "kie":
            router.add_post("/api/v1/jobs/createTask", self._kie_create)
            router.add_get("/api/v1/jobs/recordInfo", self._kie_record)
            router.add_get("/api/v1/chat/credit", self._kie_credit)
        else:
            router.add_post("/v1/generate/k/{model}", self._sc_create)
            router.add_get("/v1/tasks/{task_id}", self._sc_task)

    def needs_key(self, request: web.Request) -> bool:
        return request.path.startswith("/api/" if self.flavour == "kie" else "/v1/")

    def is_authorised(self, request: web.Request) -> bool:
        scheme, _, token = (request.headers.get("Authorization") or "").partition(" ")
        return scheme.lower() == "bearer" and self.key_matches(token)

    def unauthorised(self) -> web.StreamResponse:
        if self.flavour == "kie":
            return _envelope(401, 401)  # docs/providers.md 4.1: a missing key gets code 401 + this msg
        return web.json_response({"message": "Invalid token"}, status=401)

    def rate_limited(self, request: web.Request | None, seconds: float) -> web.StreamResponse:
        """As the scripted "rate_limited" answers: Kie HTTP 429 with envelope code 429 and no Retry-After,
        sinancode 429 with Retry-After."""
        if self.flavour == "kie":
            return _envelope(429, 429)
        return web.json_response({"message": "Too many requests"}, status=429, headers={"Retry-After": f"{seconds:g}"})

    def on_release(self, job: FakeKieJob, now: float) -> None:
        job.released(now)

    # -- scripting --

    def script(self, *outcomes: str) -> None:
        """Queue outcomes for the next creates; refuses names that do not apply to this flavour."""
        foreign = [o for o in outcomes if o in self.OUTCOMES and o not in self.outcomes]
        if foreign:
            raise ValueError(f"outcome(s) {foreign} do not apply to the {self.flavour} flavour")
        super().script(*outcomes)

    def is_create(self, path: str) -> bool:
        if self.flavour == "kie":
            return path == "/api/v1/jobs/createTask"
        return path.startswith("/v1/generate/")

    def script_callbacks(self, *modes: str) -> None:
        """Queue callback modes for the next tasks created with a callBackUrl, in order (see the module
        docstring); afterwards ``callback_default`` applies."""
        for mode in modes:
            _callback_delay(mode)
        self._callback_modes.extend(modes)

    # -- Kie handlers --

    async def _kie_create(self, request: web.Request) -> web.StreamResponse:
        outcome = self.next_outcome()
        # Gateway-level failures happen before the body is looked at, and make no task.
        if outcome in _KIE_CREATE_FAILURES:
            status, code = _KIE_CREATE_FAILURES[outcome]
            return _envelope(status, code)
        try:
            body = await request.json()
        except ValueError:
            return _envelope(200, 422, "Invalid JSON body")
        problems = _kie_problems(body)
        callback = body.get("callBackUrl") if isinstance(body, dict) else None
        if self.refuse_callback_query and isinstance(callback, str) and "?" in callback:
            problems.append("callBackUrl must not carry a query string")
        if problems:
            # Validation comes back in a 200 with code 422 ([S]: Kie clients check `code`).
            return _envelope(200, 422, "; ".join(problems))
        model = body["model"]
        self._seq += 1
        task_id = f"task_{model}_{_now_ms()}{self._seq:04d}"
        await self._accept(task_id, model, body, body["input"], outcome)
        return _envelope(200, 200, "success", {"taskId": task_id})

    async def _kie_record(self, request: web.Request) -> web.StreamResponse:
        task_id = request.query.get("taskId", "")
        job = self.jobs.get(task_id)
        if job is None:
            # [S] what Kie says for a task it does not know (docs/providers.md 4.1 client notes).
            return _envelope(200, 422, "recordInfo is null", key="message")
        job.polls += 1
        if job.outcome == "poll_500" and job.polls == 1:
            return _envelope(500, 500, key="message")
        if job.outcome == "record_null_first" and job.polls == 1:
            return _envelope(200, 422, "recordInfo is null", key="message")
        if job.outcome == "malformed":
            return garbage()
        state = self._state(job)
        answered, job.progress = job.progress, job.progress + 1
        self._reported(job, state)
        return _envelope(200, 200, "success", self._kie_record_body(job, state, answered), key="message")

    async def _kie_credit(self, request: web.Request) -> web.StreamResponse:
        # [S] GET /api/v1/chat/credit -> {"code":200,"msg":"success","data":<credits>}.
        return _envelope(200, 200, "success", self.credits)

    def _kie_record_body(self, job: FakeKieJob, state: State, answered: int) -> dict[str, Any]:
        data: dict[str, Any] = {
            "taskId": job.task_id,
            "model": job.model,
            "state": "waiting" if answered == 0 else "queuing",
            "param": json.dumps(job.body),  # docs/providers.md 4.1: the create body as a JSON string
            "resultJson": "",
            "failCode": "",
            "failMsg": "",
            "costTime": None,
            "completeTime": None,
            "createTime": job.created_ms,
            "updateTime": _now_ms(),
        }
        if state == "running":
            data["state"] = "generating"
        elif state == "done":
            assert job.ready_at is not None  # set at creation (time mode) or by the first "done" answer
            complete_ms = int(job.ready_at * 1000)
            # docs.kie.ai's example: costTime is milliseconds of generation. Poll mode has no clock to
            # measure, so it reports a fixed plausible figure.
            cost = 8123 if job.running_at is None else round((job.ready_at - job.running_at) * 1000)
            data |= {"completeTime": complete_ms, "updateTime": complete_ms, "costTime": cost}
            if job.outcome in _FAILURES:
                code, message = _FAILURES[job.outcome][0]
                data |= {"state": "fail", "failCode": code, "failMsg": message}
            else:
                # docs/providers.md 4.1: resultJson is a JSON *string*.
                data |= {"state": "success", "resultJson": json.dumps({"resultUrls": self._urls(job)})}
        return data

    # -- sinancode handlers --

    async def _sc_create(self, request: web.Request) -> web.StreamResponse:
        model = request.match_info["model"]
        if model not in _SC_MODELS:
            return web.json_response({"message": "Not Found"}, status=404)
        outcome = self.next_outcome()
        if outcome in _SC_CREATE_FAILURES:
            status, payload, headers = _SC_CREATE_FAILURES[outcome]
            return web.json_response(payload, status=status, headers=headers)
        try:
            body = await request.json()
        except ValueError:
            return _sc_invalid(["body is not valid JSON"])
        problems = _field_problems(model, body)
        if problems:
            return _sc_invalid(problems)
        task_id = str(uuid.uuid4())
        await self._accept(task_id, model, body, body, outcome)
        return web.json_response({"task_id": task_id})

    async def _sc_task(self, request: web.Request) -> web.StreamResponse:
        job = self.jobs.get(request.match_info["task_id"])
        if job is None:
            return web.json_response({"message": "Task not found"}, status=404)  # [U] body
        job.polls += 1
        if job.outcome == "poll_500" and job.polls == 1:
            return web.json_response({"message": "Internal server error"}, status=500)
        if job.outcome == "malformed":
            return garbage()
        state = self._state(job)
        job.progress += 1
        self._reported(job, state)
        body: dict[str, Any] = {"id": job.task_id, "status": "pending", "error_code": "", "error_msg": ""}
        body["result"] = None
        if state == "running":
            body["status"] = "processing"
        elif state == "done" and job.outcome in _FAILURES:
            code, message = _FAILURES[job.outcome][1]
            body |= {"status": "failed", "error_code": code, "error_msg": message}
        elif state == "done":
            urls = self._urls(job)
            result: list[Any] = list(urls)
            if job.outcome != "result_strings":
                # Today's documented shape; `type` is "<string>", its values [U] (docs/providers.md 4.2).
                kind = _SC_RESULT_TYPES.get(job.outcome, "image")
                result = [{"type": kind, "url": url} for url in urls]
            body |= {"status": "completed", "result": result}
        return web.json_response(body)

    # -- job model --

    async def _accept(
        self, task_id: str, model: str, body: dict[str, Any], fields: dict[str, Any], outcome: str
    ) -> None:
        created_at, running_at, ready_at = self.new_job_times()
        job = FakeKieJob(
            task_id=task_id,
            model=model,
            body=body,
            fields=fields,
            outcome=outcome,
            created_ms=int(created_at * 1000),
            held=self._holding,
            created_at=created_at,
            running_at=running_at,
            ready_at=ready_at,
        )
        self.jobs[task_id] = job
        url = body.get("callBackUrl") if self.flavour == "kie" else None
        if isinstance(url, str):
            job.callback_url = url
            job.callback_mode = self._callback_modes.popleft() if self._callback_modes else self.callback_default
            if job.timed:
                self._spawn(self._call_back_when_done(job))
        if outcome in _IMAGE_OUTCOMES:
            name = f"{_safe_name(task_id)}-0"
            job.image_names.append(name)
            broken = outcome == "undecodable_image"
            size = kie_image_size(model, fields, self.first_reference_size(fields.get("image_input")))
            self.register_image(name, size, broken=broken)
        if outcome == "create_hang":
            await self.hang()  # the task exists, but its id never reaches the client

    def _state(self, job: FakeKieJob) -> State:
        """The job's state as of its next normal answer (time mode: as of now)."""
        return self.job_state(job, job.progress, stalled=job.held or job.outcome == "never_finish")

    def _urls(self, job: FakeKieJob) -> list[str]:
        return [f"{self.image_base_url}/{name}.png" for name in job.image_names]

    def _reported(self, job: FakeKieJob, state: State) -> None:
        job.reported(state, time.time())
        if state == "done" and job.callback_url is not None and not job.timed and not job.callback_started:
            # Poll mode has no clock: the task "finishes" when a poll first sees it done.
            self._spawn(self._call_back(job))

    # -- callbacks --

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _call_back_when_done(self, job: FakeKieJob) -> None:
        """Time mode: wait for the task to finish (a hold keeps it running), then call back."""
        while True:
            if job.outcome == "never_finish":
                return
            assert job.ready_at is not None
            wait = job.ready_at - time.time()
            if not job.held and wait <= 0:
                break
            await asyncio.sleep(0.05 if job.held else wait)
        await self._call_back(job)

    async def _call_back(self, job: FakeKieJob) -> None:
        if job.callback_started or job.callback_url is None:
            return
        job.callback_started = True
        mode = job.callback_mode
        if mode == "lost":
            return
        delay = _callback_delay(mode)
        if delay:
            await asyncio.sleep(delay)
        if job.outcome == "malformed":
            body = garbage().body
            assert isinstance(body, bytes)
        else:
            record = self._kie_record_body(job, "done", job.progress)
            body = json.dumps({"code": 200, "msg": "success", "data": record}).encode()
        headers = {"Content-Type": "application/json"}
        key = self.webhook_hmac_key
        if key is not None or mode == "bad_signature":
            stamp = int(time.time())
            signing_key = "not-the-webhook-key" if mode == "bad_signature" else key
            assert signing_key is not None
            headers["X-Webhook-Timestamp"] = str(stamp)
            headers["X-Webhook-Signature"] = kie_signature(job.task_id, stamp, signing_key)
        for _ in range(2 if mode == "twice" else 1):
            await self._post_callback(job, job.callback_url, headers, body)

    async def _post_callback(self, job: FakeKieJob, url: str, headers: dict[str, str], body: bytes) -> None:
        sent = SentCallback(
            task_id=job.task_id, url=url, mode=job.callback_mode, headers=headers, body=body, at=time.time()
        )
        self.callbacks.append(sent)
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=_CALLBACK_TIMEOUT)
        try:
            async with self._session.post(url, data=body, headers=headers) as answer:
                await answer.read()
                sent.status = answer.status
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            # A receiver that is down is the scenario under test, not a fault of the fake.
            sent.error = f"{type(exc).__name__}: {exc}"


# --- bodies and validation -----------------------------------------------------------------------


def _now_ms() -> int:
    return int(time.time() * 1000)


def _safe_name(task_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", task_id)


def _envelope(
    status: int, code: int, message: str | None = None, data: Any = None, *, key: str = "msg"
) -> web.Response:
    """[kie] ``{code, msg, data}`` (recordInfo says ``message``), with the HTTP status given."""
    body = {
        "code": code,
        key: message if message is not None else _KIE_CODES.get(code, "success"),
        "data": data,
    }
    reason = "Maintenance" if status == 455 else None  # aiohttp has no phrase for Kie's own 455
    return web.json_response(body, status=status, reason=reason)


def _sc_invalid(problems: list[str]) -> web.Response:
    # [U] sinancode's validation answer; a client reads message || error_msg || error_code.
    return web.json_response({"error_code": "invalid_request", "error_msg": "; ".join(problems)}, status=400)


def _kie_problems(body: object) -> list[str]:
    if not isinstance(body, dict):
        return ["body must be a JSON object"]
    problems: list[str] = []
    model = body.get("model")
    if model not in _SCHEMAS:
        return [f"model must be one of {sorted(_SCHEMAS)}"]
    extra = set(body) - {"model", "input", "callBackUrl"}
    if extra:
        # [U] whether Kie ignores unknown keys; refusing them keeps the adapter honest.
        problems.append(f"unknown field(s) {sorted(extra)}")
    callback = body.get("callBackUrl")
    if callback is not None and not (isinstance(callback, str) and callback.startswith("http")):
        problems.append("callBackUrl must be a URL")
    fields = body.get("input")
    if not isinstance(fields, dict):
        return [*problems, "input must be an object"]
    return problems + [f"input.{p}" for p in _field_problems(model, fields)]


def _field_problems(model: str, fields: dict[str, Any]) -> list[str]:
    """The documented field limits (docs/providers.md 4.1 / 4.2) for Kie's ``input`` or sinancode's body."""
    schema = _SCHEMAS[model]
    problems: list[str] = []
    extra = set(fields) - schema["fields"]
    if extra:
        problems.append(f"unknown field(s) {sorted(extra)}")
    prompt = fields.get("prompt")
    if not isinstance(prompt, str) or not 1 <= len(prompt) <= schema["max_prompt"]:
        problems.append(f"prompt must be a string of 1-{schema['max_prompt']} characters")
    refs = fields.get("image_input")
    if refs is not None:
        if not isinstance(refs, list) or not all(isinstance(u, str) and u.startswith("http") for u in refs):
            problems.append("image_input must be a list of file URLs")
        elif len(refs) > schema["max_refs"]:
            problems.append(f"image_input takes at most {schema['max_refs']} images")
    checks = (("aspect_ratio", schema["ratios"]), ("resolution", _RESOLUTIONS), ("output_format", _FORMATS))
    for name, allowed in checks:
        if name in fields and fields[name] not in allowed:
            problems.append(f"{name} must be one of {sorted(allowed)}")
    if "google_search" in fields and not isinstance(fields["google_search"], bool):
        problems.append("google_search must be a boolean")
    return problems
