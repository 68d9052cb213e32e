"""Fake image-provider servers that speak the real HTTP protocols over a socket.

``FakeSeaArt`` implements SeaArt's model queue API (docs/providers.md section 2) closely enough that the
real adapter and the real httpx client run against it unchanged: create / status / response /
cancel under a ``/model`` prefix, bearer-or-key auth, both documented result shapes, the documented
error bodies, and real PNG files to download. Tests script what happens per create:

    async with FakeSeaArt() as fake:
        fake.script("create_429", "error:CONTENT_BLOCKED")
        ...

Outcomes (one per create attempt; unscripted creates get "success"):
  success               today's shape: result ``outputs[]`` with one PNG (sized by ratio/resolution; Pro
                        without a ratio keeps the first reference's shape when it is a file of this fake)
  success_seed          seed 002 shape: statuses pending/processing/completed, ``output[].content[]``
                        (image + text) and ``usage`` on the completed status body
  success_text          ``outputs[]`` with an image and a ``{"type":"text"}`` entry
  no_image              ``outputs[]`` with only a text entry (model answered without an image)
  error:TYPE            COMPLETED + ``error`` + ``error_type`` TYPE (INFERENCE_FAILURE, INFERENCE_TIMEOUT,
                        REQUEST_INVALID, CONTENT_BLOCKED, CANCELED, INTERNAL_SERVER_ERROR)
  seed_error:CODE       status "failed" + ``error{code, error_message}``, CODE 005001095..005001098
  create_429/500/401    the create is answered with that status (429 carries Retry-After: 1);
  create_403_model/_balance   no task is made, the next attempt takes the next outcome
  create_hang           the task is made, then the create never answers (until stop())
  status_hang           the first status poll never answers; later polls are normal
  status_500            the first status poll is a 500; later polls are normal
  malformed             every status (and result) answer is 200 with non-JSON bytes
  undecodable_image     success, but the file is not an image
  never_finish          IN_PROGRESS forever
  result_404            normal statuses, then the result endpoint says 404 "Request not found"
  hostile:KIND          success, but the result link misbehaves: loop (redirects to itself), drip (one
                        byte at a time), bomb (a 0.6 MB PNG declaring 12,600 x 12,600 pixels), redirect
                        (to ``redirect_target``, e.g. an internal address), internal (``redirect_target``
                        itself as the link), file (a ``file://`` link), many (the same image listed 50
                        times), gzip (the PNG sent gzip-encoded although the client asked for identity),
                        identity-gzip (the same, its first Content-Encoding header saying identity),
                        text (the image is fine; a text entry carries Markdown and a masked link: HOSTILE_TEXT;
                        the link's query would close a masked link and open another)

Time mode (``provider_time=``, see bot/testing/providers/_base.py): a job is IN_QUEUE until its
queue time has passed, IN_PROGRESS until ``ready_at``, then COMPLETED, however often it is polled.
``add_task()`` makes a task without a create request: jobs a database already holds when a bot starts
(bench/load.py --resume). ``images=`` and ``chaos=`` are the base class's (noise images, injected faults).

Run standalone with the other fakes: ``python -m bot.testing.providers``.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Unpack

from aiohttp import web
from aiohttp.typedefs import Handler

from bot.testing.providers._base import (
    HOSTILE_KINDS,
    FakeProviderServer,
    JobTimes,
    ServerOptions,
    State,
    garbage,
    pixel_size,
)

__all__ = ["SEAART_OUTCOMES", "FakeJob", "FakeSeaArt", "image_size_for"]

# --- what a test can script ----------------------------------------------------------------------

_ERROR_TYPES = {
    # [today] docs/providers.md 2.6; the messages are illustrative (only INFERENCE_FAILURE's is documented).
    "INFERENCE_FAILURE": "Task execution failed",
    "INFERENCE_TIMEOUT": "Task execution timed out",
    "REQUEST_INVALID": "Invalid request parameters",
    "CONTENT_BLOCKED": "Content blocked by safety filter",
    "CANCELED": "Task canceled",
    "INTERNAL_SERVER_ERROR": "Internal server error",
}
# [seed] 002 error codes.
_SEED_CODES = {
    "005001095": "Internal generation error",
    "005001096": "Result parsing error",
    "005001097": "HTTP error response",
    "005001098": "Synchronous generation error",
}
_CREATE_FAILURES = ("create_429", "create_500", "create_401", "create_403_model", "create_403_balance")

SEAART_OUTCOMES: frozenset[str] = frozenset(
    {
        "success",
        "success_seed",
        "success_text",
        "no_image",
        *(f"error:{t}" for t in _ERROR_TYPES),
        *(f"seed_error:{c}" for c in _SEED_CODES),
        *_CREATE_FAILURES,
        "create_hang",
        "status_hang",
        "status_500",
        "malformed",
        "undecodable_image",
        "never_finish",
        "result_404",
        *(f"hostile:{kind}" for kind in (*HOSTILE_KINDS, "internal", "file", "many", "text")),
    }
)

# The names every fake shares (the cross-provider contract suite and failover tests use them),
# as SeaArt spells each case.
COMMON_ALIASES: dict[str, str] = {
    "bad_input": "error:REQUEST_INVALID",
    "content_blocked": "error:CONTENT_BLOCKED",
    "rate_limited": "create_429",
    "server_error": "create_500",
    "auth": "create_401",
    "out_of_credit": "create_403_balance",
    "transient_failure": "error:INFERENCE_FAILURE",
}
SEAART_OUTCOMES = SEAART_OUTCOMES | frozenset(COMMON_ALIASES)

# docs/providers.md 2.3 / 2.4 (== seeds 000 / 001): NB2 takes Pro's ten ratios plus the four extreme ones.
_PRO_RATIOS = frozenset({"1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"})
_MODELS: dict[str, dict[str, Any]] = {
    "nano_banana_2": {
        "max_refs": 3,
        "ratios": {"1:8", "1:4", "4:1", "8:1"} | _PRO_RATIOS,
        "image_size": {"512", "1K", "2K", "4K"},
        "resolution": {"0.5K", "1K", "2K", "4K"},
    },
    "nano_banana_pro": {
        "max_refs": 14,
        "ratios": _PRO_RATIOS,
        "image_size": {"1K", "2K", "4K"},
        "resolution": {"1K", "2K", "4K"},  # only in seed 001; accepted here, [U] upstream
    },
}

_UNAUTHORIZED = {"code": "UNAUTHORIZED", "message": "Authorization Bearer or Key token is required"}
_RATE_LIMITED = {"code": "RATE_LIMIT_EXCEEDED", "message": "Rate limit exceeded, please try again later"}
# Outcomes whose job ends with a downloadable file (the others fail, hang or never finish).
# What a provider's text entry could carry to be shown in the bot's message: a masked link (a phishing
# page the bot would seem to vouch for), Markdown that restyles the message, a mention, and a backslash.
HOSTILE_TEXT = "[Claim your free credits](https://phish.example/login) **now** ~~ok~~ ||x|| <@1> \\[again](https://phish.example/2)"

_IMAGE_OUTCOMES = frozenset({"success", "success_seed", "success_text", "undecodable_image"}) | {
    "create_hang",
    "status_hang",
    "status_500",
}
_CREATE_PATH = re.compile(r"^/model/v1/queue/[^/]+$")


@dataclass
class FakeJob(JobTimes):
    """A task the fake accepted. ``polls`` counts status requests, answered or not; the times
    (``created_at``, ``ready_at``) come from :class:`JobTimes`."""

    request_id: str
    model: str
    body: dict[str, Any]
    outcome: str
    polls: int = 0
    cancelled: bool = False
    held: bool = False
    result_fetches: int = 0
    image_names: list[str] = field(default_factory=list)
    # Status answers given normally; drives IN_QUEUE -> IN_PROGRESS -> COMPLETED.
    progress: int = 0
    # What the latest of those answers said (poll mode: the job's state until its next answer).
    last_state: State | None = None

    @property
    def seed_shape(self) -> bool:
        return self.outcome == "success_seed" or self.outcome.startswith("seed_error:")


# --- images --------------------------------------------------------------------------------------


def image_size_for(body: Mapping[str, Any], follows: tuple[int, int] | None = None) -> tuple[int, int]:
    """Pixel size SeaArt would produce for a request body: long side by tier, shape by ratio; without a
    ratio, the shape of ``follows`` (the first reference's size, for a model that keeps it), else 1:1."""
    return pixel_size(body.get("resolution") or body.get("image_size") or "1K", body.get("aspect_ratio"), follows)


# --- the fake ------------------------------------------------------------------------------------


class FakeSeaArt(FakeProviderServer[FakeJob]):
    """SeaArt's model queue API on 127.0.0.1, scripted per create (see SEAART_OUTCOMES).

    Lifecycle per job: ``queued_polls`` status answers IN_QUEUE, then ``running_polls`` IN_PROGRESS,
    then COMPLETED (with the scripted result or error); in time mode (``provider_time``) the clock
    decides instead. Held jobs and "never_finish" stay IN_PROGRESS.
    """

    OUTCOMES: ClassVar[frozenset[str]] = SEAART_OUTCOMES
    NAME: ClassVar[str] = "seaart"

    def __init__(self, *, api_key: str = "test-seaart-key", **options: Unpack[ServerOptions]) -> None:
        super().__init__(api_key=api_key, **options)

    def add_routes(self, router: web.UrlDispatcher) -> None:
        base = "/model/v1/queue/{model}"
        router.add_post(base, self._create)
        router.add_post(base + "/sync", self._sync)
        router.add_get(base + "/requests/{rid}/status", self._status)
        router.add_get(base + "/requests/{rid}/status/stream", self._stream)
        router.add_get(base + "/requests/{rid}/response", self._response)
        router.add_put(base + "/requests/{rid}/cancel", self._cancel)

    def middlewares(self) -> list[Any]:
        return [self._known_app]

    def needs_key(self, request: web.Request) -> bool:
        return request.path.startswith("/model/")

    def is_authorised(self, request: web.Request) -> bool:
        # docs/providers.md 2.1: "Bearer {key}" or "Key {key}".
        scheme, _, token = (request.headers.get("Authorization") or "").partition(" ")
        return scheme.lower() in ("bearer", "key") and self.key_matches(token)

    def unauthorised(self) -> web.StreamResponse:
        return _error(401, _UNAUTHORIZED)  # docs/providers.md 2.10 gateway body

    @property
    def base_url(self) -> str:
        """What to configure as the SeaArt base URL, e.g. ``http://127.0.0.1:PORT/model``."""
        return f"{self.origin}/model"

    def on_release(self, job: FakeJob, now: float) -> None:
        job.released(now)

    # -- scripting --

    def is_create(self, path: str) -> bool:
        return _CREATE_PATH.match(path) is not None

    def script(self, *outcomes: str) -> None:
        super().script(*(COMMON_ALIASES.get(o, o) for o in outcomes))

    def add_task(self, body: Mapping[str, Any], *, model: str = "nano_banana_2", outcome: str = "success") -> FakeJob:
        """A task made without a create request, as if accepted before the test began (a bot restarting
        on a database full of submitted jobs). Timed like a created one; its status, result and cancel
        URLs are in ``task_urls(job)``."""
        if model not in _MODELS:
            raise ValueError(f"unknown model {model!r}; choose from {sorted(_MODELS)}")
        outcome = COMMON_ALIASES.get(outcome, outcome)
        if outcome not in SEAART_OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}; choose from {sorted(SEAART_OUTCOMES)}")
        created_at, running_at, ready_at = self.new_job_times()
        job = FakeJob(
            request_id="mmsu_" + secrets.token_hex(12),
            model=model,
            body=dict(body),
            outcome=outcome,
            held=self._holding,
            created_at=created_at,
            running_at=running_at,
            ready_at=ready_at,
        )
        self.jobs[job.request_id] = job
        self._register_files(job)
        return job

    def task_urls(self, job: FakeJob) -> dict[str, str]:
        """``status_url``, ``response_url`` and ``cancel_url`` of a task, as the create answer gives them."""
        return self._job_urls(job)

    # -- handlers --

    async def _create(self, request: web.Request) -> web.StreamResponse:
        model = request.match_info["model"]
        outcome = self.next_outcome()
        # Gateway-level failures happen before the body is looked at, and create no task.
        if outcome == "create_429":
            return _error(429, _RATE_LIMITED, headers={"Retry-After": "1"})
        if outcome == "create_500":
            return web.json_response({"detail": "Runtime execution failed"}, status=500)
        if outcome == "create_401":
            return _error(401, _UNAUTHORIZED)
        if outcome == "create_403_model":
            return web.json_response({"detail": "Model not allowed for this user"}, status=403)
        if outcome == "create_403_balance":
            # The queue API's 403 body is [U]; the LLM API cites insufficient balance (docs/providers.md 2.10).
            return _error(403, {"code": "INSUFFICIENT_BALANCE", "message": "Insufficient balance"})
        try:
            body = await request.json()
        except ValueError:
            return _invalid([{"loc": ["body"], "msg": "Invalid JSON", "type": "json_invalid"}])
        if not isinstance(body, dict):
            return _invalid([{"loc": ["body"], "msg": "Input should be an object", "type": "dict_type"}])
        if "webhook_url" in body or "webhook_url" in request.query:
            return web.json_response({"detail": "webhook not supported"}, status=400)  # 2.2
        problems = _validate(model, body)
        if problems:
            return _invalid(problems)

        request_id = "mmsu_" + secrets.token_hex(12)
        created_at, running_at, ready_at = self.new_job_times()
        job = FakeJob(
            request_id=request_id,
            model=model,
            body=body,
            outcome=outcome,
            held=self._holding,
            created_at=created_at,
            running_at=running_at,
            ready_at=ready_at,
        )
        self.jobs[request_id] = job
        self._register_files(job)
        if outcome == "create_hang":
            await self.hang()  # the task exists, but its id never reaches the client
        urls = self._job_urls(job)
        return web.json_response({"request_id": request_id, **urls, "queue_position": 0})

    async def _sync(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"detail": "Not Found"}, status=404)  # docs/providers.md 2.2

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"detail": "SSE streaming not supported"}, status=400)  # 2.2

    async def _status(self, request: web.Request) -> web.StreamResponse:
        job = self._lookup(request)
        if job is None:
            return web.json_response({"detail": "Request not found"}, status=404)
        job.polls += 1
        if job.outcome == "status_hang" and job.polls == 1:
            await self.hang()
        if job.outcome == "status_500" and job.polls == 1:
            return web.json_response({"detail": "Runtime execution failed"}, status=500)
        if job.outcome == "malformed":
            return garbage()
        state = self._state(job, job.progress)
        job.progress += 1
        job.last_state = state
        job.reported(state, time.time())
        return web.json_response(self._status_body(job, state))

    async def _response(self, request: web.Request) -> web.StreamResponse:
        job = self._lookup(request)
        if job is None or job.outcome == "result_404":
            return web.json_response({"detail": "Request not found"}, status=404)
        job.result_fetches += 1
        if job.outcome == "malformed":
            return garbage()
        state = self._last_state(job)
        if state != "done":
            # docs/providers.md 2.7: 202 with the status body while not terminal.
            return web.json_response(self._status_body(job, state), status=202)
        if job.cancelled or job.outcome.startswith(("error:", "seed_error:")):
            # What the result endpoint says for a failed task is [U]; repeat the status body.
            return web.json_response(self._status_body(job, state))
        return web.json_response(self._result_body(job))

    async def _cancel(self, request: web.Request) -> web.StreamResponse:
        job = self._lookup(request)
        if job is None:
            return web.json_response({"status": "NOT_FOUND", "detail": "Request not found"}, status=404)
        if job.cancelled or self._last_state(job) == "done":
            return web.json_response({"status": "ALREADY_COMPLETED"}, status=400)  # 2.9
        job.cancelled = True
        return web.json_response({"status": "CANCELLATION_REQUESTED"}, status=202)

    # -- job model --

    def _lookup(self, request: web.Request) -> FakeJob | None:
        job = self.jobs.get(request.match_info["rid"])
        return job if job is not None and job.model == request.match_info["model"] else None

    @web.middleware
    async def _known_app(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        model = request.match_info.get("model")
        if model is not None and model not in _MODELS:
            return web.json_response({"detail": f"App not found: {model}"}, status=404)  # 2.10
        return await handler(request)

    def _last_state(self, job: FakeJob) -> State:
        """The job's state between status answers, for its result and its cancel: in time mode as of now;
        in poll mode what its latest answer said. A held job let go (``release``) so ends at its next
        answer, not at once: its answers re-judged as if it had never been held would end it the moment it
        was released, however many there were (a test's cancel was then refused or not by how often the
        bot had polled meanwhile)."""
        if job.timed or job.cancelled or job.last_state is None:
            return self._state(job, 0)
        return job.last_state

    def _state(self, job: FakeJob, answered: int) -> State:
        """The job's state as of its ``answered``-th status answer (0 = first); time mode: as of now."""
        if job.cancelled:
            return "done"
        return self.job_state(job, answered, stalled=job.held or job.outcome == "never_finish")

    def _job_urls(self, job: FakeJob) -> dict[str, str]:
        prefix = f"{self.base_url}/v1/queue/{job.model}/requests/{job.request_id}"
        return {
            "response_url": f"{prefix}/response",
            "status_url": f"{prefix}/status",
            "cancel_url": f"{prefix}/cancel",
        }

    def _register_files(self, job: FakeJob) -> None:
        if job.outcome not in _IMAGE_OUTCOMES and not job.outcome.startswith("hostile:"):
            return
        name = f"{job.request_id}-0"
        job.image_names.append(name)
        # docs/providers.md 2.4: Pro without aspect_ratio keeps the input image's shape, else makes 1:1. NB2
        # documents no default (2.3): square here.
        follows = self.first_reference_size(job.body.get("image_urls")) if job.model == "nano_banana_pro" else None
        size = image_size_for(job.body, follows)
        self.register_image(name, size, broken=job.outcome == "undecodable_image")

    def _status_body(self, job: FakeJob, state: State) -> dict[str, Any]:
        base: dict[str, Any] = {
            "request_id": job.request_id,
            "response_url": self._job_urls(job)["response_url"],
        }
        if job.seed_shape:
            # [seed] 002 / vtrix statuses; output and error ride on the status body.
            if state == "queued":
                return {"status": "pending", **base}
            if state == "running":
                return {"status": "processing", **base}
            if job.outcome.startswith("seed_error:"):
                code = job.outcome.removeprefix("seed_error:")
                # Seed 002 types `code` as integer (leading zeros lost); send the last one as a
                # string so clients are exercised with both.
                value: int | str = code if code == "005001098" else int(code)
                return {
                    "status": "failed",
                    **base,
                    "error": {"code": value, "error_message": _SEED_CODES[code]},
                }
            return {"status": "completed", **base, **self._seed_result(job)}
        if state == "queued":
            return {"status": "IN_QUEUE", **base, "queue_position": 0}
        if state == "running":
            return {"status": "IN_PROGRESS", **base}
        done: dict[str, Any] = {"status": "COMPLETED", **base, "metrics": {"inference_time": 1.25}}
        if job.cancelled:
            done |= {"error": _ERROR_TYPES["CANCELED"], "error_type": "CANCELED"}
        elif job.outcome.startswith("error:"):
            etype = job.outcome.removeprefix("error:")
            done |= {"error": _ERROR_TYPES[etype], "error_type": etype}
        return done

    def _outputs(self, job: FakeJob) -> list[dict[str, Any]]:
        outputs: list[dict[str, Any]] = []
        for name in job.image_names:
            spec = self._files[name]
            width, height = spec if isinstance(spec, tuple) else (1024, 1024)
            url = f"{self.image_base_url}/{name}.png"
            if job.outcome == "hostile:file":
                url = "file:///etc/passwd"
            elif job.outcome == "hostile:internal":
                url = self.redirect_target
            elif job.outcome == "hostile:many":
                url = f"{self.image_base_url}/{name}.png"
            elif job.outcome == "hostile:text":  # a query that would close a masked link and open another
                url = f"{self.image_base_url}/{name}.png?v=)[Free credits](https://phish.example/3)"
            elif job.outcome.startswith("hostile:"):
                url = self.hostile_url(job.outcome.removeprefix("hostile:"), name)
            outputs.append(
                {
                    "type": "image",
                    "url": url,
                    "content_type": "image/png",
                    "file_name": f"{name}.png",
                    "width": width,
                    "height": height,
                }
            )
        return outputs

    def _result_body(self, job: FakeJob) -> dict[str, Any]:
        if job.seed_shape:
            return {"request_id": job.request_id, **self._seed_result(job)}
        # [today] docs/providers.md 2.7.
        outputs = self._outputs(job)
        if job.outcome == "hostile:many":
            outputs = outputs * 50
        if job.outcome == "no_image":
            # The model refused in prose (docs/providers.md 6.4 reports this for Gemini; [U] for SeaArt).
            outputs = [{"type": "text", "text": "I can't make that image."}]
        if job.outcome == "success_text":
            # Where text goes in today's shape is [U]; the fake uses a `text` entry.
            outputs.append({"type": "text", "text": "Here is your red apple."})
        if job.outcome == "hostile:text":
            outputs.append({"type": "text", "text": HOSTILE_TEXT})
        return {
            "request_id": job.request_id,
            "outputs": outputs,
            "metadata": {"prompt": job.body.get("prompt")},
        }

    def _seed_result(self, job: FakeJob) -> dict[str, Any]:
        content: list[dict[str, Any]] = [{"type": "image", "url": o["url"]} for o in self._outputs(job)]
        content.append({"type": "text", "text": "Here is your red apple."})
        return {
            "output": [{"content": content}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 1290, "total_tokens": 1302},
            "metadata": {"model": job.model},
        }


def _error(status: int, error: dict[str, str], headers: dict[str, str] | None = None) -> web.Response:
    body = {"error": error, "request_id": "req_" + secrets.token_hex(8)}
    return web.json_response(body, status=status, headers=headers)


def _invalid(detail: list[dict[str, Any]]) -> web.Response:
    return web.json_response({"detail": detail}, status=422)  # FastAPI validation shape


def _validate(model: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The documented field limits (docs/providers.md 2.3 / 2.4) as FastAPI-style problems."""
    spec = _MODELS[model]
    problems: list[dict[str, Any]] = []

    def bad(field_name: str, msg: str) -> None:
        problems.append({"loc": ["body", field_name], "msg": msg, "type": "value_error"})

    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not 1 <= len(prompt) <= 2500:
        bad("prompt", "prompt must be a string of 1-2500 characters")
    urls = body.get("image_urls")
    if urls is not None:
        if not isinstance(urls, list) or not all(isinstance(u, str) and u.startswith("http") for u in urls):
            bad("image_urls", "image_urls must be a list of URLs")
        elif len(urls) > spec["max_refs"]:
            bad("image_urls", f"at most {spec['max_refs']} images")
    for name in ("aspect_ratio", "image_size", "resolution"):
        allowed = spec["ratios"] if name == "aspect_ratio" else spec[name]
        if name in body and body[name] not in allowed:
            bad(name, f"must be one of {sorted(allowed)}")
    modalities = body.get("response_modalities")
    if modalities is not None and (
        not isinstance(modalities, list) or not set(modalities) <= {"Text", "Image"} or not modalities
    ):
        bad("response_modalities", 'must be ["Text", "Image"] or ["Image"]')
    return problems
