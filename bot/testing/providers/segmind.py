"""A fake Segmind serverless API (docs/providers.md section 5), v1 and v2 on one server.

``FakeSegmind`` answers the real adapter and the real httpx client over a socket:

* auth: ``x-api-key`` only (a Bearer token is refused), with the two documented 401 bodies;
* ``POST /v1/{model}`` (synchronous): the raw PNG bytes with ``x-cost``, ``x-remaining-credits``,
  ``x-generation-time``, ``x-seed-value`` and ``x-request-id`` headers;
* ``POST /v2/{model}`` (queued): ``{request_id, status: QUEUED, poll_url, status_url, response_url}``;
  ``GET /v2/requests/{id}/status`` walks QUEUED -> PROCESSING -> COMPLETED | FAILED (FAILED as HTTP
  422 with ``{"status":"FAILED","error":...,"metrics":{timings}}``); ``GET /v2/requests/{id}`` (and
  the ``poll_url`` alias ``GET /v1/requests/{id}``) gives the result with ``output``, ``images[]``
  and ``metrics.cost`` / ``metrics.remaining_credits``; unknown or expired ids answer 404;
* ``GET /v1/get-user-credits``: ``{"credits": n}`` (free, runs no model);
* 406 "Invalid content type" (plain text) whenever a create lacks ``Content-Type: application/json``,
  whatever is scripted; 405 as an HTML page for a wrong verb; 404 for an unknown model slug;
  field values checked against the documented lists (missing prompt -> 400, a value outside a
  documented list -> 406, as the [S] errors doc describes "a parameter value rejected before the
  model runs"); a balance below the request's price -> 406 "Insufficient credits".

Time mode (``provider_time=``, bot/testing/providers/_base.py): a v2 job is PROCESSING until its drawn
time has passed, however often it is polled (v1 answers with the image, so it has none). ``chaos=``
falls on the API calls under ``/v1/`` and ``/v2/`` that carry the right key (a wrong key gets Segmind's
own 401), never on file downloads. bench/soak.py runs the v2 queue with both.

The exact v2 result JSON and v1's failure answers are [U] upstream (docs/providers.md 9.4); the shapes
chosen here are noted per outcome. Files are always PNG whatever ``output_format`` asks for.

Outcomes (one per create; unscripted creates get "success"):
  success                 v1: PNG bytes + accounting headers; v2: result ``output: url, images: [url]``
  bad_input               400 ``{"error": ...}`` on the create, no job
  content_blocked         v1: 422 FAILED with policy wording [U on v1]; v2: the job ends FAILED (422)
  rate_limited            429 + ``x-rate-limit-reset-at-utc`` (ISO 8601, ``reset_seconds`` ahead), no job
  server_error            500 ``{"error": "Internal server error"}``, no job
  auth                    401 invalid-key body on the create, no job
  out_of_credit           406 "Insufficient credits ...", no job
  transient_failure       v1: 422 FAILED (internal error) [U on v1]; v2: the job ends FAILED (422)
  never_finish            v1: the create hangs; v2: PROCESSING forever
  undecodable_image       success, but the bytes (v1) / the file (v2) are not an image
  create_hang             the job is made, then the create never answers (until stop())
  malformed               v1: a 200 that claims JSON and is not; v2: every status/result answer is that
  -- Segmind-specific --
  v1_json_url             v1 answers 200 JSON ``{"status": "Success", "image": url}`` (v2: as success)
  v1_json_base64          v1 answers 200 JSON ``{"image": "<base64 PNG>"}`` (v2: as success)
  v2_base64               v2 result ``images[]`` holds a ``data:image/png;base64,...`` URI (v1: as success)
  v2_many_base64          hostile: v2 result ``images[]`` holds fifty such URIs, of fifty small PNGs (v1: as success)
  no_image                v1: JSON with only text; v2: result ``output`` is text and ``images`` empty
  wrong_content_type_406  406 "Invalid content type" as if the header were wrong (it also happens
                          unscripted whenever the header really is missing or wrong)
  spend_limit_406         406 "Team spend limit reached ...", no job
  failed_422              the docs' failure: 422 ``{"status":"FAILED","error":"Prompt is Mandatory ..."}``
  expired_404             v2: the first status answer is normal, then the record has expired (404);
                          v1: as success
  model_retired_410       410 "model retired", no job
  forbidden_403           403 "not permitted for this team", no job
  gateway_502             502 HTML page from the gateway, no job
  gateway_504             the job is made, then 504 HTML page (the create's fate is unknown)

Run standalone with the other fakes: ``python -m bot.testing.providers``.
"""

from __future__ import annotations

import base64
import re
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar, Literal

from aiohttp import web
from aiohttp.typedefs import Handler

from bot.testing.providers._base import (
    COMMON_OUTCOMES,
    Chaos,
    FakeProviderServer,
    ImageStyle,
    JobTimes,
    Seconds,
    garbage,
    make_png,
    pixel_size,
)

__all__ = ["SEGMIND_OUTCOMES", "FakeSegmind", "FakeSegmindJob", "segmind_image_size", "validate_body"]

SEGMIND_OUTCOMES: frozenset[str] = COMMON_OUTCOMES | {
    "v1_json_url",
    "v1_json_base64",
    "v2_base64",
    "v2_many_base64",
    "no_image",
    "wrong_content_type_406",
    "spend_limit_406",
    "failed_422",
    "expired_404",
    "model_retired_410",
    "forbidden_403",
    "gateway_502",
    "gateway_504",
}

# docs/providers.md 5.2 [seed] (15 ratios incl. auto; the hidden five inferred) and 5.5 [S] for Pro.
_PRO_RATIOS = frozenset({"1:1", "2:3", "3:2", "4:3", "3:4", "4:5", "5:4", "16:9", "9:16", "21:9"})
_MODELS: dict[str, dict[str, Any]] = {
    "nano-banana-2": {
        "ratios": _PRO_RATIOS | {"auto", "1:4", "4:1", "1:8", "8:1"},
        "output_resolution": {"512px", "1K", "2K", "4K"},
        "prices": {
            "512px": Decimal("0.06"),
            "1K": Decimal("0.08"),
            "2K": Decimal("0.12"),
            "4K": Decimal("0.16"),
        },
        "knobs": True,
    },
    "nano-banana-pro": {
        "ratios": _PRO_RATIOS,
        "output_resolution": {"1K", "2K", "4K"},
        "prices": {"1K": Decimal("0.15"), "2K": Decimal("0.15"), "4K": Decimal("0.25")},
        "knobs": False,  # [S] Pro documents no seed/thinking/web search/safety: extra fields are ignored
    },
}
_MAX_REFS = 14

# Bodies from the [S] errors doc where it quotes them; the others are illustrative.
_MISSING_KEY = "Missing Authorization or x-api-key in header"
_INVALID_KEY = (
    "Unauthorized. API key is invalid or may have expired. Please check your API key at "
    "https://cloud.segmind.com/console/api-keys"
)
_FAILURES = {
    "content_blocked": "Content blocked: the request violates the content policy (PROHIBITED_CONTENT)",
    "transient_failure": "Inference failed: the model returned an internal error",
    "failed_422": "Prompt is Mandatory and must be string",  # the docs' own example
}
_HTML_405 = "<html><head><title>405 Not Allowed</title></head><body><h1>405 Not Allowed</h1></body></html>"
_HTML_GATEWAY = "<html><head><title>{code}</title></head><body><h1>{code}</h1></body></html>"
# Outcomes whose job produces an image file.
_IMAGE_OUTCOMES = frozenset(
    {"success", "undecodable_image", "v1_json_url", "v1_json_base64", "v2_base64", "v2_many_base64", "expired_404"}
    | {"create_hang", "gateway_504"}
)
_CREATE_PATH = re.compile(r"^/v[12]/[^/]+$")

State = Literal["queued", "running", "done"]


@dataclass
class FakeSegmindJob(JobTimes):
    """A job the fake accepted (v1 calls too). ``polls`` counts status requests, answered or not; the
    times (``created_at``, ``ready_at``) come from :class:`JobTimes`."""

    request_id: str
    model: str  # Segmind's slug, e.g. "nano-banana-2"
    mode: Literal["v1", "v2"]
    body: dict[str, Any]
    outcome: str
    cost: Decimal
    polls: int = 0
    result_fetches: int = 0
    held: bool = False
    expired: bool = False
    charged: bool = False
    progress: int = 0
    image_names: list[str] = field(default_factory=list)


def segmind_image_size(body: dict[str, Any], follows: tuple[int, int] | None = None) -> tuple[int, int]:
    """Pixel size for a request body: long side by ``output_resolution``, shape by ``aspect_ratio``.
    Without one the documented default, 1:1 [seed]; ``auto`` ("lets model decide") takes the shape of
    ``follows``, the first reference's size, as Google's model does without a ratio (docs/providers.md 6.2)."""
    ratio = body.get("aspect_ratio") or "1:1"
    return pixel_size(body.get("output_resolution") or "1K", ratio, follows)


class FakeSegmind(FakeProviderServer[FakeSegmindJob]):
    """Segmind's v1 and v2 APIs on 127.0.0.1, scripted per create (see SEGMIND_OUTCOMES).

    v2 lifecycle per job: ``queued_polls`` status answers QUEUED, then ``running_polls`` PROCESSING,
    then COMPLETED or FAILED. Held jobs and "never_finish" stay PROCESSING. ``credits`` is the
    account balance (USD); successful jobs are charged their price from docs/providers.md 5.5.
    """

    OUTCOMES: ClassVar[frozenset[str]] = SEGMIND_OUTCOMES
    NAME: ClassVar[str] = "segmind"

    def __init__(
        self,
        *,
        api_key: str = "SG_0123456789abcdef",
        host: str = "127.0.0.1",
        port: int = 0,
        queued_polls: int = 1,
        running_polls: int = 1,
        hang_seconds: float = 300.0,
        credits: Decimal | str = "100",
        reset_seconds: float = 2.0,
        provider_time: Seconds | None = None,
        images: ImageStyle = "gradient",
        chaos: Chaos | None = None,
    ) -> None:
        super().__init__(
            api_key=api_key,
            host=host,
            port=port,
            queued_polls=queued_polls,
            running_polls=running_polls,
            hang_seconds=hang_seconds,
            provider_time=provider_time,
            images=images,
            chaos=chaos,
        )
        self.credits = Decimal(credits)
        # How far ahead x-rate-limit-reset-at-utc points on a 429.
        self.reset_seconds = reset_seconds

    def add_routes(self, router: web.UrlDispatcher) -> None:
        # Fixed paths first: /v1/get-user-credits must not be taken for a model called that.
        router.add_get("/v1/get-user-credits", self._credits)
        router.add_get("/v2/requests/{rid}/status", self._status)
        router.add_get("/v2/requests/{rid}", self._result)
        router.add_get("/v1/requests/{rid}", self._result)  # the create answer's `poll_url` [C]
        router.add_post("/v1/{model}", self._v1)
        router.add_post("/v2/{model}", self._v2)
        for version in ("v1", "v2"):
            for method in ("GET", "PUT", "PATCH", "DELETE"):
                router.add_route(method, f"/{version}/{{model}}", self._wrong_verb)

    def middlewares(self) -> list[Any]:
        return [self._authenticate]

    def needs_key(self, request: web.Request) -> bool:
        # The key check lives in _authenticate, which can answer both documented 401 bodies.
        return False

    def chaos_applies(self, request: web.Request) -> bool:
        return request.path.startswith(("/v1/", "/v2/"))

    def is_authorised(self, request: web.Request) -> bool:
        return self.key_matches(request.headers.get("x-api-key"))

    def unauthorised(self) -> web.StreamResponse:
        return _error(401, _INVALID_KEY)

    @web.middleware
    async def _authenticate(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(("/v1/", "/v2/")) and not self.is_authorised(request):
            if request.headers.get("x-api-key") is None and request.headers.get("Authorization") is None:
                return _error(401, _MISSING_KEY)
            return self.unauthorised()  # a wrong key, or the key sent as a Bearer token [S]
        return await handler(request)

    # -- scripting --

    def is_create(self, path: str) -> bool:
        return _CREATE_PATH.match(path) is not None  # v1 and v2

    def expire(self, request_id: str | None = None) -> None:
        """Age one job's record (or all) past Segmind's 1 h expiry: its poll endpoints answer 404."""
        for job in self.jobs.values():
            if request_id is None or job.request_id == request_id:
                job.expired = True

    # -- creates --

    async def _v1(self, request: web.Request) -> web.StreamResponse:
        return await self._create(request, "v1")

    async def _v2(self, request: web.Request) -> web.StreamResponse:
        return await self._create(request, "v2")

    async def _create(self, request: web.Request, mode: Literal["v1", "v2"]) -> web.StreamResponse:
        model = request.match_info["model"]
        if model not in _MODELS:
            return _error(404, f"Model {model} not found")
        ctype = (request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/json":
            # [S] "Invalid content type", whatever is scripted: the header is checked before anything else.
            return web.Response(status=406, text="Invalid content type")
        outcome = self.next_outcome()
        refused = self._gateway_refusal(outcome, model)
        if refused is not None:
            return refused
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "Invalid JSON body")
        if not isinstance(body, dict):
            return _error(400, "Request body must be a JSON object")
        problem = validate_body(model, body)
        if problem is not None:
            return problem
        if outcome == "bad_input":
            return _error(400, "Invalid request: image_urls[0] could not be downloaded")
        cost = _MODELS[model]["prices"][body.get("output_resolution") or "1K"]
        if cost > self.credits:
            return _error(406, f"Insufficient credits. Your balance is ${self.credits}; this request needs ${cost}.")

        request_id = str(uuid.uuid4())
        created_at, running_at, ready_at = self.new_job_times()
        job = FakeSegmindJob(
            request_id=request_id,
            model=model,
            mode=mode,
            body=body,
            outcome=outcome,
            cost=cost,
            held=self._holding and mode == "v2",
            created_at=created_at,
            running_at=running_at if mode == "v2" else None,
            ready_at=ready_at if mode == "v2" else created_at,
        )
        self.jobs[request_id] = job
        self._register_files(job)
        if outcome == "create_hang" or (mode == "v1" and outcome == "never_finish"):
            await self.hang()  # the job exists, but its answer never reaches the client
        if outcome == "gateway_504":
            return web.Response(
                status=504, text=_HTML_GATEWAY.format(code="504 Gateway Time-out"), content_type="text/html"
            )
        if mode == "v1":
            return self._v1_answer(job)
        return web.json_response({"request_id": request_id, "status": "QUEUED", **self._job_urls(job)})

    def _gateway_refusal(self, outcome: str, model: str) -> web.StreamResponse | None:
        """Scripted refusals that happen before the body is read, and make no job."""
        if outcome == "auth":
            return self.unauthorised()
        if outcome == "forbidden_403":
            return _error(403, f"Your team is not permitted to use the model {model}")
        if outcome == "model_retired_410":
            return _error(410, f"The model {model} has been retired")
        if outcome == "wrong_content_type_406":
            return web.Response(status=406, text="Invalid content type")
        if outcome == "out_of_credit":
            return _error(406, "Insufficient credits. Your balance is $0.02; this request needs $0.08.")
        if outcome == "spend_limit_406":
            return _error(406, "Team spend limit reached: the monthly limit of $50.00 for this member is used up.")
        if outcome == "rate_limited":
            return self.rate_limited(None, self.reset_seconds)
        if outcome == "server_error":
            return _error(500, "Internal server error")
        if outcome == "gateway_502":
            return web.Response(status=502, text=_HTML_GATEWAY.format(code="502 Bad Gateway"), content_type="text/html")
        return None

    def rate_limited(self, request: web.Request | None, seconds: float) -> web.StreamResponse:
        """[S] 429 with ``x-rate-limit-reset-at-utc`` (ISO 8601), ``seconds`` ahead."""
        reset = datetime.now(UTC) + timedelta(seconds=seconds)
        return web.json_response(
            {"error": "Rate limit exceeded"},
            status=429,
            headers={"x-rate-limit-reset-at-utc": reset.isoformat(timespec="milliseconds").replace("+00:00", "Z")},
        )

    def _v1_answer(self, job: FakeSegmindJob) -> web.StreamResponse:
        if job.outcome == "malformed":
            self._charge(job)  # a 200 is billed, readable or not
            return garbage()
        if job.outcome in _FAILURES:
            # v1 failure answers are [U]; the gateway's v2 failure envelope is assumed (not billed).
            return web.json_response(_failure_body(job), status=422)
        self._charge(job)
        headers = self._accounting_headers(job)
        if job.outcome == "no_image":
            return web.json_response({"status": "Success", "output": "I can't make that image."}, headers=headers)
        name = job.image_names[0]
        if job.outcome == "v1_json_url":
            return web.json_response(
                {"status": "Success", "image": f"{self.image_base_url}/{name}.png"}, headers=headers
            )
        data = self.image_bytes(name)
        if job.outcome == "v1_json_base64":
            return web.json_response({"image": base64.b64encode(data).decode("ascii")}, headers=headers)
        return web.Response(body=data, content_type="image/png", headers=headers)

    def _accounting_headers(self, job: FakeSegmindJob) -> dict[str, str]:
        # [S] conventions.yml: the v1 accounting headers.
        seed = job.body.get("seed")
        return {
            "x-cost": str(job.cost),
            "x-remaining-credits": str(self.credits),
            "x-generation-time": "1.25",
            "x-seed-value": str(seed if isinstance(seed, int) else secrets.randbelow(2**31)),
            "x-request-id": job.request_id,
        }

    # -- v2 polls --

    def _lookup(self, request: web.Request) -> FakeSegmindJob | None:
        job = self.jobs.get(request.match_info["rid"])
        return job if job is not None and job.mode == "v2" and not job.expired else None

    async def _status(self, request: web.Request) -> web.StreamResponse:
        job = self._lookup(request)
        if job is None:
            return _not_found(request.match_info["rid"])
        job.polls += 1
        if job.outcome == "malformed":
            return garbage()
        state = self._state(job, job.progress)
        job.progress += 1
        job.reported(state, time.time())
        if job.outcome == "expired_404":
            job.expired = True  # the next poll finds the record gone
        urls = self._job_urls(job)
        if state == "queued":
            return web.json_response({"status": "QUEUED", "request_id": job.request_id, **urls, "metrics": {}})
        if state == "running":
            return web.json_response({"status": "PROCESSING", "request_id": job.request_id, **urls, "metrics": {}})
        if job.outcome in _FAILURES:
            return web.json_response(_failure_body(job), status=422)
        self._charge(job)
        return web.json_response(
            {"status": "COMPLETED", "request_id": job.request_id, "metrics": {"inference_time": 13.06}}
        )

    async def _result(self, request: web.Request) -> web.StreamResponse:
        job = self._lookup(request)
        if job is None:
            return _not_found(request.match_info["rid"])
        job.result_fetches += 1
        if job.outcome == "malformed":
            return garbage()
        state = self._state(job, max(job.progress - 1, 0))
        if state != "done":
            status = "QUEUED" if state == "queued" else "PROCESSING"
            return web.json_response({"status": status, "request_id": job.request_id, "metrics": {}})
        if job.outcome in _FAILURES:
            return web.json_response(_failure_body(job), status=422)
        self._charge(job)
        return web.json_response(self._result_body(job))

    def _result_body(self, job: FakeSegmindJob) -> dict[str, Any]:
        # The exact image result is [U] (docs/providers.md 5.3): `output` is always present [S], and
        # `images[]` is added for image models.
        images: list[str] = []
        for name in job.image_names:
            if job.outcome == "v2_base64":
                images.append("data:image/png;base64," + base64.b64encode(self.image_bytes(name)).decode("ascii"))
            elif job.outcome == "v2_many_base64":  # fifty different small images
                pngs = (make_png(64 + n, 64) for n in range(50))
                images += ["data:image/png;base64," + base64.b64encode(png).decode("ascii") for png in pngs]
            else:
                images.append(f"{self.image_base_url}/{name}.png")
        output: Any = images[0] if len(images) == 1 else images
        if job.outcome == "no_image":
            output = "I can't make that image."
        return {
            "request_id": job.request_id,
            "status": "COMPLETED",
            "output": output,
            "images": images,
            "metrics": {
                "cost": float(job.cost),
                "remaining_credits": float(self.credits),
                "inference_time": 13.06,
                "queue_time": 0.42,
                "total_time": 13.48,
                "retry_count": 0,
            },
        }

    async def _credits(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"credits": float(self.credits)})

    async def _wrong_verb(self, request: web.Request) -> web.StreamResponse:
        return web.Response(status=405, text=_HTML_405, content_type="text/html")  # [S] HTML, not JSON

    # -- job model --

    def _state(self, job: FakeSegmindJob, answered: int) -> State:
        """The job's state as of its ``answered``-th status answer (0 = first); time mode: as of now."""
        return self.job_state(job, answered, stalled=job.held or job.outcome == "never_finish")

    def on_release(self, job: FakeSegmindJob, now: float) -> None:
        job.released(now)

    def _charge(self, job: FakeSegmindJob) -> None:
        # [S] only HTTP 200 is billed: failed jobs keep the balance.
        if not job.charged:
            job.charged = True
            self.credits -= job.cost

    def _job_urls(self, job: FakeSegmindJob) -> dict[str, str]:
        return {
            "poll_url": f"{self.origin}/v1/requests/{job.request_id}",
            "status_url": f"{self.origin}/v2/requests/{job.request_id}/status",
            "response_url": f"{self.origin}/v2/requests/{job.request_id}",
        }

    def _register_files(self, job: FakeSegmindJob) -> None:
        if job.outcome not in _IMAGE_OUTCOMES:
            return
        name = f"{job.request_id}-0"
        job.image_names.append(name)
        size = segmind_image_size(job.body, self.first_reference_size(job.body.get("image_urls")))
        self.register_image(name, size, broken=job.outcome == "undecodable_image")


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)  # [S] {"error": "<message>"}


def _not_found(request_id: str) -> web.Response:
    return _error(404, f"Request {request_id} not found")  # [S] errors doc wording


def _failure_body(job: FakeSegmindJob) -> dict[str, Any]:
    # [S] the 422 body: status, error and timings, no cost fields (not billed).
    return {
        "status": "FAILED",
        "request_id": job.request_id,
        "error": _FAILURES[job.outcome],
        "metrics": {"inference_time": 0.007, "queue_time": 0.23, "total_time": 0.24},
    }


def validate_body(model: str, body: dict[str, Any]) -> web.Response | None:
    """The documented field lists (docs/providers.md 5.2 / 5.5); None when the body is acceptable."""
    spec = _MODELS[model]
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        return _error(400, "Missing required field: prompt")
    urls = body.get("image_urls")
    if urls is not None and (
        not isinstance(urls, list)
        or len(urls) > _MAX_REFS
        or not all(isinstance(u, str) and u.startswith(("http://", "https://")) for u in urls)
    ):
        return _error(406, f"Invalid value for 'image_urls': up to {_MAX_REFS} public image URLs")
    allowed: dict[str, set[str] | frozenset[str]] = {
        "aspect_ratio": spec["ratios"],
        "output_resolution": spec["output_resolution"],
        "output_format": {"jpg", "png"},
    }
    if spec["knobs"]:
        allowed |= {"thinking_level": {"minimal", "high"}, "response_modalities": {"TEXT_AND_IMAGE", "IMAGE"}}
    for name, values in allowed.items():
        if name in body and body[name] not in values:
            return _error(406, f"Invalid value for '{name}'. Allowed values: {', '.join(sorted(values))}")
    if spec["knobs"]:
        tolerance = body.get("safety_tolerance")
        if tolerance is not None and (type(tolerance) is not int or not 1 <= tolerance <= 6):
            return _error(406, "Invalid value for 'safety_tolerance'. Allowed values: 1-6")
        seed = body.get("seed")
        if seed is not None and type(seed) is not int:
            return _error(406, "Invalid value for 'seed': must be an integer")
        search = body.get("web_search")
        if search is not None and not isinstance(search, bool):
            return _error(406, "Invalid value for 'web_search': must be a boolean")
    return None
