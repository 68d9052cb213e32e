"""SeaArt / SeaCloud model queue API: ``nano_banana_2`` and ``nano_banana_pro`` (docs/providers.md section 2).

Sources, cited per branch below:
  [today]  the current SeaCloud docs as summarised in docs/providers.md 2.1-2.10 (confidence tags there);
  [seed]   the project's seed documents (docs/providers.md 0.2, seeds 000, 001, 002), whose result format matches
           vtrix.ai (docs/providers.md 2.8) rather than today's SeaCloud docs.
Where they disagree the parser accepts both; what we *send* follows [today] unless noted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Literal
from urllib.parse import quote

import httpx

from bot.errors import AuthError, ErrorCategory, ProviderError, SubmitUncertainError
from bot.models import GenerationRequest, ImageRef, JobHandle, JobUpdate, UpdateStatus
from bot.providers._adapter import NO_IMAGE, ErrorAnswer, HttpAdapter, Op, Outcome
from bot.providers._http import is_result_url, json_object, result_urls, shown, usable_job_id
from bot.providers.base import Capabilities, Prefetched, ProviderCheck
from bot.providers.families import NANO_BANANA_2, NANO_BANANA_PRO

log = logging.getLogger(__name__)

# The families' ratios, no `auto`: [today] docs/providers.md 2.3 / 2.4 (the reference pages) == seeds 000, 001.
SEAART_MODELS: dict[str, Capabilities] = {
    "nano_banana_2": NANO_BANANA_2.capabilities(
        provider_model="nano_banana_2",
        max_prompt_chars=2500,
        max_reference_images=3,
        # [U] estimate: SeaArt publishes prices only on its model pages (docs/providers.md 2.11); editable in
        # config ([models.prices_usd.seaart.nano_banana_2]).
        prices_micro_usd=(("512", 30_000), ("1K", 40_000), ("2K", 60_000), ("4K", 90_000)),
    ),
    "nano_banana_pro": NANO_BANANA_PRO.capabilities(
        provider_model="nano_banana_pro",
        max_prompt_chars=2500,
        # [U] estimate, as above.
        prices_micro_usd=(("1K", 90_000), ("2K", 90_000), ("4K", 150_000)),
    ),
}


@dataclass(frozen=True, slots=True)
class _SizeParam:
    """Which body field carries the output size for a model, and the bot's names -> its values."""

    field: str
    values: dict[str, str]


_SIZE_PARAMS: dict[str, _SizeParam] = {
    # NB2 documents both `resolution` (0.5K..4K, default 1K) and `image_size` (512..4K); which wins
    # when both are sent is [U] (docs/providers.md 2.3). We send only `resolution`: it is the one with a
    # documented default, and the only size field in seed 002.
    "nano_banana_2": _SizeParam("resolution", {"512": "0.5K", "1K": "1K", "2K": "2K", "4K": "4K"}),
    # Pro: today's reference page lists only `image_size` (1K/2K/4K) [C]; `resolution` appears only in
    # the seed's Pro page, so whether today's API accepts it is [U] (docs/providers.md 2.4). Send `image_size`.
    "nano_banana_pro": _SizeParam("image_size", {"1K": "1K", "2K": "2K", "4K": "4K"}),
}


# --- status and job-error vocabulary -------------------------------------------------------------

# [today] docs/providers.md 2.6: IN_QUEUE -> IN_PROGRESS -> COMPLETED (terminal for success and failure).
# [seed]  vtrix / seed 002 (docs/providers.md 2.8): pending / processing / completed / failed.
# CANCELED as a *status* exists only in fal's schema [S] (docs/providers.md 3.2); accepted in case SeaArt
# follows fal there too.
_STATUS_MAP: dict[str, UpdateStatus] = {
    "IN_QUEUE": UpdateStatus.QUEUED,
    "PENDING": UpdateStatus.QUEUED,
    "IN_PROGRESS": UpdateStatus.RUNNING,
    "PROCESSING": UpdateStatus.RUNNING,
    "COMPLETED": UpdateStatus.SUCCEEDED,  # provisional: an `error` field turns it into a failure
    "FAILED": UpdateStatus.FAILED,
    "CANCELED": UpdateStatus.CANCELLED,
    "CANCELLED": UpdateStatus.CANCELLED,
}


_TRY_AGAIN_INTERNAL = Outcome(
    ErrorCategory.TRANSIENT,
    "SeaArt had an internal error while generating the image. Try again in a minute.",
)

# [today] docs/providers.md 2.6 `error_type` values.
_ERROR_TYPES: dict[str, Outcome] = {
    "INFERENCE_FAILURE": Outcome(
        ErrorCategory.TRANSIENT,
        "The image model failed while generating the image (a temporary problem at SeaArt). Try again in a minute.",
    ),
    "INFERENCE_TIMEOUT": Outcome(
        ErrorCategory.TRANSIENT,
        "The image model took too long and gave up. Try again in a minute, or pick a lower resolution.",
    ),
    "INTERNAL_SERVER_ERROR": _TRY_AGAIN_INTERNAL,
    "REQUEST_INVALID": Outcome(
        ErrorCategory.BAD_INPUT,
        "SeaArt rejected the request's settings. Check the prompt and the reference images "
        "(they must be public image links), then try again.",
    ),
    "CONTENT_BLOCKED": Outcome(
        ErrorCategory.CONTENT_BLOCKED,
        "SeaArt's safety filter blocked this request. Rephrase the prompt or use different reference images.",
    ),
    "CANCELED": Outcome(
        ErrorCategory.CANCELLED,
        "The job was cancelled before it finished, so no image was made. Start a new one if you still want it.",
        UpdateStatus.CANCELLED,
    ),
}
_ERROR_TYPES["CANCELLED"] = _ERROR_TYPES["CANCELED"]

# [seed] 002 error codes; docs/providers.md 2.8 recommends "provider internal error, retryable once".
_SEED_CODES: dict[str, str] = {
    "005001095": "internal generation error",
    "005001096": "result parsing error",
    "005001097": "HTTP error response",
    "005001098": "synchronous generation error",
}

_UNKNOWN_FAILURE = Outcome(
    ErrorCategory.TRANSIENT,
    "SeaArt could not generate the image and did not say why. Try again; if it keeps failing, "
    "tell the server's moderators.",
)


@dataclass(frozen=True, slots=True)
class _JobError:
    error_type: str | None
    code: str | None
    message: str | None


def _normalise_code(code: object) -> str | None:
    # Seed 002 types `code` as an integer, which cannot keep the leading zeros of "005001095";
    # pad back so 5001095 and "005001095" compare equal.
    if isinstance(code, bool) or code is None:
        return None
    text = str(code).strip()
    if not text:
        return None
    return text.zfill(9) if text.isdigit() else text


def _job_error(data: dict[str, Any]) -> _JobError | None:
    """The job-level error in a status or result body, in either documented shape; None if none."""
    error = data.get("error")
    error_type = data.get("error_type")
    etype = error_type.strip().upper() if isinstance(error_type, str) and error_type.strip() else None
    if isinstance(error, dict):
        # [seed] 002: error {code, error_message}.
        message = error.get("error_message") or error.get("message")
        return _JobError(
            etype,
            _normalise_code(error.get("code")),
            message if isinstance(message, str) else None,
        )
    if isinstance(error, str) and error.strip():
        # [today] docs/providers.md 2.6: "error" string + "error_type".
        return _JobError(etype, None, error)
    if etype:
        return _JobError(etype, None, None)
    # A null or empty `error` is a serializer artefact, not a failure ("success iff no error").
    return None


def _outcome_for(error: _JobError | None, status: UpdateStatus) -> Outcome:
    if error is not None:
        if error.error_type and error.error_type in _ERROR_TYPES:
            return _ERROR_TYPES[error.error_type]
        if error.code and error.code in _SEED_CODES:
            return _TRY_AGAIN_INTERNAL
    if status is UpdateStatus.CANCELLED:
        return _ERROR_TYPES["CANCELED"]
    return _UNKNOWN_FAILURE


# --- result parsing ------------------------------------------------------------------------------


def _has_result(data: dict[str, Any]) -> bool:
    return "outputs" in data or "output" in data


def _as_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _collect(data: dict[str, Any]) -> tuple[list[ImageRef], list[str]]:
    """Images and texts from a result body, in provider order, from either documented shape."""
    items: list[Any] = []
    outputs = data.get("outputs")
    if isinstance(outputs, list):
        # [today] docs/providers.md 2.7: outputs[] of {type, url, content_type, file_name, width, height}.
        items.extend(outputs)
    output = data.get("output")
    if isinstance(output, dict):
        output = [output]
    if isinstance(output, list):
        # [seed] 002 / vtrix: output[] of {content: [{type: image|text, url}]}.
        for entry in output:
            if isinstance(entry, dict) and isinstance(entry.get("content"), list):
                items.extend(entry["content"])
            elif isinstance(entry, dict):
                items.append(entry)
    images: list[ImageRef] = []
    texts: list[str] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        kind = str(item.get("type") or "").strip().lower()
        if kind == "text":
            # Where text lives is [U] (docs/providers.md 2.7/2.8): accept `text` or a string `content`.
            text = item.get("text")
            if not isinstance(text, str):
                text = item.get("content")
            if isinstance(text, str) and text.strip():
                texts.append(text.strip())
            continue
        if kind not in ("image", "image_url", ""):
            continue
        url = item.get("url")
        nested = item.get("image_url")
        if not isinstance(url, str):
            # OpenAI-style {"type":"image_url","image_url":{"url":...}}: the seed names the type
            # "image_url" without its layout, so both the flat and nested forms are read.
            url = nested.get("url") if isinstance(nested, dict) else nested
        if not is_result_url(url):
            continue
        content_type = item.get("content_type")
        images.append(
            ImageRef(
                url=url,
                content_type=content_type if isinstance(content_type, str) else None,
                width=_as_int(item.get("width")),
                height=_as_int(item.get("height")),
            )
        )
    usable = set(result_urls(image.url or "" for image in images))
    return [image for image in images if image.url in usable], texts


def _usage(*bodies: dict[str, Any]) -> dict[str, Any]:
    usage: dict[str, Any] = {}
    for body in bodies:
        tokens = body.get("usage")  # [seed] 002: {prompt_tokens, completion_tokens, total_tokens}
        if isinstance(tokens, dict):
            usage.update(tokens)
        metrics = body.get("metrics")  # [today] docs/providers.md 2.6: metrics.inference_time
        if isinstance(metrics, dict) and isinstance(metrics.get("inference_time"), int | float):
            usage["inference_time"] = metrics["inference_time"]
    return usage


def _error_fields(response: httpx.Response) -> tuple[str, str]:
    """(code, message) from a gateway error body: {"error":{code,message}} or {"detail": ...}."""
    body = json_object(response)
    if body is None:
        return "", ""
    error = body.get("error")
    if isinstance(error, dict):  # docs/providers.md 2.10 gateway shape
        return str(error.get("code") or ""), str(error.get("message") or "")
    detail = body.get("detail")
    if isinstance(detail, str):  # docs/providers.md 2.10 FastAPI-style string
        return "", detail
    if isinstance(detail, list):  # FastAPI validation list, as fal documents (docs/providers.md 3.2)
        parts = []
        for entry in detail:
            if isinstance(entry, dict):
                loc = ".".join(str(p) for p in entry.get("loc", []) if p != "body")
                parts.append(f"{loc}: {entry.get('msg', '')}".strip(": "))
        return "", "; ".join(parts)
    if isinstance(error, str):
        return str(body.get("error_type") or ""), error
    status = body.get("status")  # cancel answers, e.g. {"status": "ALREADY_COMPLETED"} (2.9, [U])
    return (str(status), "") if isinstance(status, str) else ("", "")


# --- the adapter ---------------------------------------------------------------------------------


class SeaArtProvider(HttpAdapter):
    """SeaArt's queue API: create a task, poll its status, fetch its result, cancel it."""

    name = "seaart"
    label = "SeaArt"
    key_env = "SEAART_API_KEY"
    # The white-label mirror https://odirouter.ai/model serves the same API.
    default_base_url = "https://cloud.seaart.ai/model"
    enabled_by_default = True
    MODELS: ClassVar[dict[str, Capabilities]] = SEAART_MODELS
    # The key goes as a Bearer token (the default), one of the two documented forms (docs/providers.md 2.1).
    key_spaces = "\r\n "
    gone_reason = "it may have expired or been removed"

    # -- submit --

    async def submit(
        self, request: GenerationRequest, *, job_id: str | None = None, prefetched: Prefetched | None = None
    ) -> JobHandle:
        # SeaArt downloads references itself, so only public http(s) links work (docs/providers.md 2.1).
        caps = self._accept(request)
        body = self._body(request, caps)
        url = f"{self._base_url}/v1/queue/{quote(caps.model, safe='')}"
        response = await self._send("POST", url, Op.CREATE, caps.model, json=body)
        data = json_object(response) or {}
        request_id = usable_job_id(data.get("request_id"))
        if request_id is None:
            # A 2xx means the task may exist; without its id we cannot poll it, and sending the create
            # again could pay twice.
            raise SubmitUncertainError(
                detail=f"create accepted without a usable request_id: {self._describe(response)}",
                provider=self.name,
                status_code=response.status_code,
            )
        urls = ("status_url", "response_url", "cancel_url")
        extra = {k: data[k] for k in urls if isinstance(data.get(k), str)}
        log.info("seaart %s accepted job %s", caps.model, request_id)
        return JobHandle(provider=self.name, model=caps.model, provider_job_id=request_id, extra=extra)

    @staticmethod
    def _body(request: GenerationRequest, caps: Capabilities) -> dict[str, Any]:
        # The body *is* the parameter object, no `input` wrapper (docs/providers.md 2.1).
        body: dict[str, Any] = {"prompt": request.sent_prompt}
        if request.reference_images:
            body["image_urls"] = [ref.url for ref in request.reference_images]
        if request.aspect_ratio is not None:
            # Omitted otherwise: Pro then matches the input image, else 1:1 (docs/providers.md 2.4).
            body["aspect_ratio"] = request.aspect_ratio
        size = _SIZE_PARAMS[caps.model]
        # Always sent, default included: the size decides the price tier, so the bot should know
        # which one it ordered rather than trust an undocumented provider default (Pro has none).
        resolution = request.resolution or caps.default_resolution
        body[size.field] = size.values[resolution]
        return body

    # -- poll --

    async def _poll(self, handle: JobHandle) -> JobUpdate:
        response = await self._send("GET", self._job_url(handle, "status"), Op.STATUS, handle.model)
        data = self._require_json(response, Op.STATUS)
        status = self._status_of(data, response)
        if status in (UpdateStatus.QUEUED, UpdateStatus.RUNNING):
            position = data.get("queue_position")  # docs/providers.md 2.6: while IN_QUEUE
            # Bounded: the poll schedule multiplies it by a float, which a JSON integer of hundreds of digits
            # overflows (an OverflowError at every poll); no queue holds a million jobs ahead of this one.
            usable = isinstance(position, int) and not isinstance(position, bool) and 0 <= position <= 1_000_000
            ahead = position if usable else None
            return JobUpdate(status=status, queue_position=ahead if status is UpdateStatus.QUEUED else None)
        error = _job_error(data)
        if error is not None or status in (UpdateStatus.FAILED, UpdateStatus.CANCELLED):
            return self._failure(handle, error, status, data)
        if _has_result(data):
            # [seed] vtrix returns `output` with the completed status; no second call needed.
            return self._success(handle, data, data)
        return await self._fetch_result(handle, data)

    async def _fetch_result(self, handle: JobHandle, status_body: dict[str, Any]) -> JobUpdate:
        response = await self._send("GET", self._job_url(handle, "response"), Op.RESULT, handle.model)
        if response.status_code == 202:
            # docs/providers.md 2.7: 202 + the status body while the task is not terminal.
            data = json_object(response) or {}
            queued = _STATUS_MAP.get(str(data.get("status", "")).strip().upper()) is UpdateStatus.QUEUED
            return JobUpdate(status=UpdateStatus.QUEUED if queued else UpdateStatus.RUNNING)
        data = self._require_json(response, Op.RESULT)
        error = _job_error(data)
        if error is not None:
            # What the result endpoint returns for a failed task is [U] (2.7); honour an error if present.
            return self._failure(handle, error, UpdateStatus.FAILED, data)
        if not _has_result(data):
            raise self._unexpected(response, Op.RESULT, "no outputs/output field")
        return self._success(handle, data, status_body)

    def _success(self, handle: JobHandle, result: dict[str, Any], status_body: dict[str, Any]) -> JobUpdate:
        images, texts = _collect(result)
        text = "\n\n".join(texts) or None
        usage = _usage(status_body, result)
        if not images:
            detail = f"seaart {handle.model} {handle.provider_job_id}: completed without an image"
            return self._ended(NO_IMAGE, detail, usage, text=text)
        return JobUpdate(status=UpdateStatus.SUCCEEDED, images=images, text=text, usage=usage)

    def _failure(
        self, handle: JobHandle, error: _JobError | None, status: UpdateStatus, data: dict[str, Any]
    ) -> JobUpdate:
        parts = [f"seaart {handle.model} {handle.provider_job_id}: status={shown(data.get('status'))}"]
        if error is not None:
            if error.error_type:
                parts.append(f"error_type={shown(error.error_type)}")
            if error.code:
                parts.append(f"code={shown(error.code)} ({_SEED_CODES.get(error.code, 'unknown code')})")
            if error.message:
                parts.append(f"error={error.message[:300]!r}")
        return self._ended(_outcome_for(error, status), " ".join(parts), _usage(data))

    def _status_of(self, data: dict[str, Any], response: httpx.Response) -> UpdateStatus:
        raw = data.get("status")
        status = _STATUS_MAP.get(raw.strip().upper()) if isinstance(raw, str) else None
        if status is None:
            raise self._unexpected(response, Op.STATUS, f"unknown status {shown(raw)}")
        return status

    # -- cancel --

    async def cancel(self, handle: JobHandle) -> bool:
        # Cancelling twice is harmless, so the call counts as idempotent and may be retried.
        response = await self._send("PUT", self._job_url(handle, "cancel"), Op.CANCEL, handle.model)
        if response.status_code in (400, 404):
            log.info("seaart cancel of %s refused: HTTP %d", handle.provider_job_id, response.status_code)
            return False
        code, _ = _error_fields(response)
        # A 2xx that nevertheless says the job was already done (fal's vocabulary, 2.9 [U]).
        return code.upper() not in ("ALREADY_COMPLETED", "NOT_FOUND")

    async def check(self) -> ProviderCheck:
        """Ask for the status of a job that cannot exist: 401/403 means a bad key, 404 a good one."""
        url = f"{self._base_url}/v1/queue/nano_banana_2/requests/bananacord-key-check/status"
        return await self._probe(url)

    # -- plumbing --

    def _job_url(self, handle: JobHandle, kind: Literal["status", "response", "cancel"]) -> str:
        # fal says "use the URLs returned by submit" (docs/providers.md 3.1); SeaArt returns them too.
        # But our key goes with every call, so a returned URL is used only if it points at the
        # configured base; otherwise the documented path is built (docs/providers.md 2.2).
        given = handle.extra.get(f"{kind}_url")
        if isinstance(given, str) and self._is_ours(given):
            return given
        model = quote(handle.model, safe="")
        job = quote(handle.provider_job_id, safe="")
        return f"{self._base_url}/v1/queue/{model}/requests/{job}/{kind}"

    # -- errors: docs/providers.md 2.10 and 8.3, on top of the shared ladder --

    def _is_answer(self, response: httpx.Response, op: Op) -> bool:
        # docs/providers.md 2.9: 400 ALREADY_COMPLETED and 404 NOT_FOUND are answers to a cancel, not failures.
        return op is Op.CANCEL and response.status_code in (400, 404)

    def _error_text(self, response: httpx.Response) -> str:
        return " ".join(_error_fields(response))

    def _error(self, answer: ErrorAnswer) -> ProviderError:
        text = answer.text.lower()
        # The model queue's 403 bodies are [U]; the LLM API uses 403 for key, balance and model
        # permission alike (docs/providers.md 2.10), so the body decides.
        if answer.code == 403 and "model not allowed" in text:
            return AuthError(
                f"The bot's SeaArt key may not use {answer.display}. The bot owner has to enable it for the "
                "key, or pick another model.",
                **answer.kw,
            )
        if answer.code == 404 and "app not found" in text:
            # On a job URL too: the model, not the job, is unknown. A bare 404 or "Request not found"
            # there (2.10: "do not retry for too long") means the job is gone.
            return super()._error(replace(answer, op=Op.CREATE))
        return super()._error(answer)
