"""Kie.ai's market task API and the sinancode proxy in front of it (docs/providers.md section 4).

Two deployments of one API, the proxy a subclass of the original:

* ``KieProvider`` (https://api.kie.ai): ``POST /api/v1/jobs/createTask`` with ``{"model", "input": {...}}``,
  then ``GET /api/v1/jobs/recordInfo?taskId=...``. Every answer is a ``{code, msg|message, data}``
  envelope, and its ``code`` decides, whatever the HTTP status says: a 200 answer can carry 402 or 429.
* ``SinancodeProvider`` (https://api.sinancode.com/v1): ``POST /generate/k/nano-banana-2`` with Kie's
  ``input`` fields flattened, then ``GET /tasks/{id}``, no envelope. Only Nano Banana 2 is documented there.

Sources, cited per branch below:
  [kie]    docs.kie.ai as summarised in docs/providers.md 4.1 ([C]; the Pro schema is [S], read from the
           docs mirror in monet88/artio);
  [sc]     docs.sinancode.com as summarised in docs/providers.md 4.2, and seed 003 ([C]);
  [client] third-party client code quoted in docs/providers.md 4.1/4.2 ([S]): a sinancode client treating
           ``completed``/``failed`` as terminal; Kie clients checking ``json.code`` and tolerating
           ``{"code":422,"msg":"recordInfo is null"}`` for a task polled right after its creation;
  [U]      not documented anywhere we found: parsed defensively, with a comment saying so.
Neither API documents cancel, a seed, a thinking level or a safety knob.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar, Unpack
from urllib.parse import parse_qs, quote, urlencode

import httpx

from bot.errors import AuthError, BadInputError, ErrorCategory, ProviderError, SubmitUncertainError, TransientError
from bot.models import GenerationRequest, ImageRef, JobHandle, JobUpdate, UpdateStatus
from bot.providers._adapter import (
    NO_IMAGE,
    AdapterArgs,
    ErrorAnswer,
    HttpAdapter,
    JobGone,
    Op,
    Outcome,
    ratio_to_send,
)
from bot.providers._http import (
    is_result_url,
    json_object,
    key_rejected,
    number_in,
    result_urls,
    shown,
    unreachable,
    usable_job_id,
)
from bot.providers.base import Capabilities, Prefetched, ProviderCheck
from bot.providers.families import NANO_BANANA_2, NANO_BANANA_PRO

if TYPE_CHECKING:
    from bot.config import Settings

log = logging.getLogger(__name__)

# Kie answers "recordInfo is null" for a task polled right after its creation [client]; a not-found
# answer that soon is read as "not visible yet", later as "gone".
NOT_FOUND_GRACE_SECONDS = 120.0

# Both document "up to 30 MB" per reference. 28 MiB (29.4 MB) stays under either reading of "MB" and is
# a whole number of MiB, so validate()'s message ("at most 28 MiB") is exactly the limit applied.
_MAX_REF_BYTES = 28 * 1024 * 1024

# 1 Kie credit = $0.005 [S] docs/providers.md 4.1 (artio's Kie pricing page); the credits per NB2/Pro image
# are [U], so these are [U] estimates, editable in config. sinancode's price is [U] too; it resells Kie, so
# the same estimate.
_NB2_PRICES = (("1K", 40_000), ("2K", 60_000), ("4K", 90_000))
_PRO_PRICES = (("1K", 90_000), ("2K", 90_000), ("4K", 120_000))

KIE_MODELS: dict[str, Capabilities] = {
    # [kie] NB2 input.aspect_ratio == [sc] aspect_ratio: `auto` (the default) plus the family's 14.
    "nano_banana_2": NANO_BANANA_2.capabilities(
        provider_model="nano-banana-2",
        max_prompt_chars=20000,
        auto_ratio=True,
        resolutions=("1K", "2K", "4K"),  # no 512 tier on either API ([kie], [sc]; default 1K)
        max_reference_bytes=_MAX_REF_BYTES,
        output_formats=("jpg", "png"),
        web_search=True,  # input.google_search
        prices_micro_usd=_NB2_PRICES,
    ),
    # [kie] Pro schema [S]: the family's 10 ratios plus `auto`; the default is 1:1.
    "nano_banana_pro": NANO_BANANA_PRO.capabilities(
        provider_model="nano-banana-pro",
        max_prompt_chars=10000,
        auto_ratio=True,
        max_reference_images=8,  # "up to 8" in the mirrored schema snapshot [S]
        max_reference_bytes=_MAX_REF_BYTES,
        output_formats=("png", "jpg"),
        web_search=False,  # the Pro schema has no google_search field
        prices_micro_usd=_PRO_PRICES,
    ),
}
# [sc] documents only /generate/k/nano-banana-2; a nano-banana-pro path is plausible but unseen [U].
SINANCODE_MODELS: dict[str, Capabilities] = {"nano_banana_2": replace(KIE_MODELS["nano_banana_2"])}


def input_fields(request: GenerationRequest, caps: Capabilities) -> dict[str, Any]:
    """Kie's ``input`` object for a validated request; sinancode takes the same fields, flattened."""
    fields: dict[str, Any] = {"prompt": request.sent_prompt}
    if request.reference_images:
        fields["image_input"] = [ref.url for ref in request.reference_images]
    # Left out for a new image without a ratio (NB2 then uses `auto`, Pro 1:1: the documented defaults); an
    # edit without one gets `auto`, so Pro does not make it square (ratio_to_send).
    if (ratio := ratio_to_send(request, caps)) is not None:
        fields["aspect_ratio"] = ratio
    # Always sent, default included: the size decides the price tier, so the bot says which one it
    # ordered rather than rely on the documented default staying 1K.
    fields["resolution"] = request.resolution or caps.default_resolution
    if request.output_format is not None:
        # The bot's names ("jpg", "png") are the providers' values; omitted, NB2 makes jpg, Pro png.
        fields["output_format"] = request.output_format
    if request.web_search:
        # Default false on both; validate() has refused it for models without the field (Pro).
        fields["google_search"] = True
    # request.safety_tolerance is not mapped: neither API has a safety knob, and refusing levels a
    # provider cannot honour happens centrally (docs/architecture.md section 6), not per adapter.
    return fields


# --- failure vocabulary --------------------------------------------------------------------------

# Kie's failMsg / sinancode's error_msg wording for blocked content is [U] (docs/providers.md 8.3); these
# words cover the usual phrasings ("violates our content policy", "flagged as sensitive", "NSFW").
_POLICY_WORDS = (
    "policy",
    "safety",
    "sensitive",
    "nsfw",
    "prohibited",
    "violat",
    "inappropriate",
    "moderat",
    "flagged",
    "unsafe",
    "harmful",
    "blocked",
)
# Failures that name the request itself (a reference that could not be fetched, a bad value). [U]
_BAD_INPUT_WORDS = ("invalid", "parameter", "download", "fetch", "unsupported", "too large", "image_input")
_BAD_INPUT_CODES = frozenset({"400", "413", "415", "422"})
_NOT_FOUND_WORDS = ("recordinfo is null", "not found", "not exist", "no such task")

# [client] sinancode: completed/failed terminal, processing running, anything else queued. The other
# spellings are [U] tolerance, so a renamed terminal state does not read as "queued" forever.
_SC_DONE = frozenset({"completed", "complete", "succeeded", "success"})
_SC_FAILED = frozenset({"failed", "fail", "error"})
_SC_CANCELLED = frozenset({"cancelled", "canceled"})
_SC_RUNNING = frozenset({"processing", "running", "in_progress", "generating"})
# [kie] recordInfo `state`.
_KIE_QUEUED = frozenset({"waiting", "queuing"})
_KIE_RUNNING = frozenset({"generating"})


def _classify_failure(code: str, message: str) -> ErrorCategory:
    text = f"{code} {message}".lower()
    if any(word in text for word in _POLICY_WORDS):
        return ErrorCategory.CONTENT_BLOCKED
    if code.strip() in _BAD_INPUT_CODES or any(word in text for word in _BAD_INPUT_WORDS):
        return ErrorCategory.BAD_INPUT
    return ErrorCategory.TRANSIENT


# --- parsing helpers -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Envelope:
    """[kie] ``{code, msg|message, data}``: create answers say ``msg``, recordInfo says ``message``."""

    code: int
    message: str
    data: Any


def _envelope(response: httpx.Response) -> _Envelope | None:
    body = json_object(response)
    if body is None:
        return None
    code = body.get("code")
    if isinstance(code, str):
        code = number_in(code)  # [U] tolerance: the docs type it as an integer; ASCII digits only
    if not isinstance(code, int) or isinstance(code, bool):
        return None
    message = body.get("msg")
    if not isinstance(message, str) or not message:
        message = body.get("message")
    return _Envelope(code, message if isinstance(message, str) else "", body.get("data"))


def _kie_result_urls(raw: object) -> list[str] | None:
    """[kie] ``resultJson`` is a JSON *string* holding ``{"resultUrls": [...]}``. None if unreadable."""
    if raw is None or raw == "":
        return []
    parsed: object = raw
    if isinstance(raw, str):
        try:
            parsed = json.loads(raw)
        except (ValueError, RecursionError):  # not JSON, or nested past the parser
            return None
    if not isinstance(parsed, dict):  # [U] tolerance: an already-decoded object is read the same way
        return None
    urls = parsed.get("resultUrls")
    if urls is None:
        return []
    if isinstance(urls, str):
        urls = [urls]
    if not isinstance(urls, list):
        return None
    return result_urls(urls)


def _json_object(raw: object) -> dict[str, Any]:
    """[kie] ``param`` is the create body as a JSON *string*; {} when it is anything else."""
    parsed: object = raw
    if isinstance(raw, str):
        try:
            parsed = json.loads(raw)
        except (ValueError, RecursionError):
            return {}
    return parsed if isinstance(parsed, dict) else {}


# The query parameter of callBackUrl that names the bot's job (job ids are URL-safe: bot/store/jobs.py).
JOB_PARAMETER = "job"


def _refused_callback_query(body: dict[str, Any], exc: BadInputError) -> bool:
    """A create refused as invalid for its callBackUrl, which carried a query (the job's id)."""
    url = body.get("callBackUrl")
    return isinstance(url, str) and "?" in url and "callback" in f"{exc.detail} {exc.user_message}".lower()


def callback_url_for(base: str, job_id: str | None) -> str:
    """``base`` with the job's id in its query: Kie keeps the URL in the task's ``param``, so a task whose
    create's answer was lost can be traced to its job (``task_owner``)."""
    if job_id is None:
        return base
    return f"{base}{'&' if '?' in base else '?'}{urlencode({JOB_PARAMETER: job_id})}"


def job_named_by(url: object, base: str) -> str | None:
    """The job id in ``url`` when it is ``base`` with one (``callback_url_for``), else None: a task sent
    elsewhere (another deployment on the same account) is not ours."""
    if not isinstance(url, str):
        return None
    head, _, query = url.partition("?")
    if head != base.partition("?")[0]:
        return None
    values = parse_qs(query).get(JOB_PARAMETER, [])
    return values[-1] if len(values) == 1 and values[-1] else None


# [sc] types a result entry's ``type`` as "<string>" and lists no values [U]. Only kinds that are plainly not an
# image are dropped ("text", "video/mp4", "audio_url"...): an entry typed "png" or "image/png" is the image the
# task was billed for, and dropping it told the member "no image came back".
_NOT_IMAGE_KINDS = frozenset({"text", "video", "audio"})


def _not_an_image(kind: str) -> bool:
    """Whether a result entry's ``type`` names something other than an image (its first word, before / or _)."""
    return re.split(r"[/_\s]", kind.strip().lower(), maxsplit=1)[0] in _NOT_IMAGE_KINDS


def _sinancode_result_urls(raw: object) -> list[str]:
    """[sc] ``result`` is ``[{type, url}]`` today and ``string[]`` in an older revision: accept both."""
    if isinstance(raw, str | dict):
        raw = [raw]
    if not isinstance(raw, list):
        return []
    urls: list[str] = []
    for item in raw:
        if isinstance(item, str):
            url: object = item
        elif isinstance(item, dict):
            if _not_an_image(str(item.get("type") or "")):
                continue
            url = item.get("url")
        else:
            continue
        if is_result_url(url):
            urls.append(url)
    return result_urls(urls)


def _progress(value: object) -> float | None:
    """[client] recordInfo may carry ``progress`` (0-100) while generating; None where it does not."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
        return None  # checked first: a JSON integer of hundreds of digits overflows a float (OverflowError)
    return value / 100 if value > 1 else float(value)


def _text(value: object) -> str:
    if value is None or isinstance(value, bool):
        return ""
    return str(value).strip()


# --- the adapters --------------------------------------------------------------------------------


class KieProvider(HttpAdapter):
    """Kie's market task API: create a task, then poll its record. No cancel."""

    name = "kie"
    label = "Kie.ai"
    key_env = "KIE_API_KEY"
    default_base_url = "https://api.kie.ai"
    MODELS: ClassVar[dict[str, Capabilities]] = KIE_MODELS
    # [kie] / [sc]: a Bearer key (the default) on every call.
    key_spaces = "\r\n\t "

    def __init__(self, *, callback_url: str | None = None, **args: Unpack[AdapterArgs]) -> None:
        super().__init__(**args)
        # [kie] callBackUrl: Kie POSTs the task record there when it ends (bot/callbacks.py).
        self._callback_url = callback_url
        # Whether the job's id may ride in callBackUrl's query: [U] that Kie takes one; False once it refused.
        self._job_in_callback = True

    @classmethod
    def _options(cls, settings: Settings) -> dict[str, Any]:
        from bot.callbacks import PATH as KIE_CALLBACK_PATH

        callbacks = settings.callbacks
        callback_url = f"{callbacks.public_url}{KIE_CALLBACK_PATH}" if callbacks.enabled else None
        return {**super()._options(settings), "callback_url": callback_url}

    # -- submit --

    async def submit(
        self, request: GenerationRequest, *, job_id: str | None = None, prefetched: Prefetched | None = None
    ) -> JobHandle:
        # Both APIs download references themselves from "file URLs" ([kie], [sc]).
        caps = self._accept(request)
        fields = input_fields(request, caps)
        url, body = self._create(caps, fields, job_id if self._job_in_callback else None)
        try:
            response = await self._send("POST", url, Op.CREATE, caps.model, json=body)
        except BadInputError as exc:
            if not _refused_callback_query(body, exc):
                raise
            # Refused as invalid, so nothing was made: sent again without the job's id. The task's end still
            # calls back; only a create whose answer is lost can no longer be traced (bot/lost_tasks.py).
            self._job_in_callback = False
            self._log.warning(
                "%s refused a callBackUrl carrying the job's id (%s); sending it without from now on, so a create "
                "whose answer is lost fails at once",
                self.label,
                exc.detail,
            )
            url, body = self._create(caps, fields)
            response = await self._send("POST", url, Op.CREATE, caps.model, json=body)
        task_id = usable_job_id(_text(self._task_id(response)))
        if task_id is None:
            # A 2xx means the task may exist; without its id we cannot poll it, and sending the create
            # again could pay twice.
            raise SubmitUncertainError(
                detail=f"{self.name} create accepted without a usable task id: {self._describe(response)}",
                provider=self.name,
                status_code=response.status_code,
            )
        log.info("%s %s accepted job %s", self.name, caps.model, task_id)
        return self._handle(caps, task_id, time.time(), callback="callBackUrl" in body)

    def _handle(self, caps: Capabilities, task_id: str, submitted_at: float, *, callback: bool) -> JobHandle:
        return JobHandle(
            provider=self.name,
            model=caps.model,
            provider_job_id=task_id,
            extra={"submitted_at": submitted_at, "callback": callback},
        )

    def _create(
        self, caps: Capabilities, fields: dict[str, Any], job_id: str | None = None
    ) -> tuple[str, dict[str, Any]]:
        """The create call's URL and body for the ``input`` fields."""
        body: dict[str, Any] = {"model": caps.provider_model, "input": fields}
        if self._callback_url:
            body["callBackUrl"] = callback_url_for(self._callback_url, job_id)
        return f"{self._base_url}/api/v1/jobs/createTask", body

    # -- tasks whose create's answer was lost (base.FindsLostTasks) --

    @property
    def finds_lost_tasks(self) -> bool:
        # Only a callback can tell the bot about a task it never learned the id of, by the id it carries.
        return bool(self._callback_url) and self._job_in_callback

    async def task_owner(self, task_id: str) -> str | None:
        """[kie] recordInfo's ``param`` is the create body as sent, so its ``callBackUrl`` names the job that
        sent it. Asked with this bot's key: a task of another account is not found."""
        if not self._callback_url:
            return None
        url = f"{self._base_url}/api/v1/jobs/recordInfo"
        try:
            response = await self._send("GET", url, Op.STATUS, "", params={"taskId": task_id})
        except JobGone:
            return None  # not a task of this key's account
        envelope = _envelope(response)
        data = envelope.data if envelope is not None else None
        if not isinstance(data, dict):
            raise self._unexpected(response, Op.STATUS, "no data object")
        return job_named_by(_json_object(data.get("param")).get("callBackUrl"), self._callback_url)

    def adopted_handle(self, task_id: str, request: GenerationRequest) -> JobHandle:
        caps = self._accept(request)
        # Its record may lag, as a just-created one's does (_gone): timed from now, not from the create.
        return self._handle(caps, task_id, time.time(), callback=True)

    def _task_id(self, response: httpx.Response) -> object:
        envelope = _envelope(response)
        data = envelope.data if envelope is not None else None  # [kie] data.taskId
        return data.get("taskId") if isinstance(data, dict) else None

    # -- poll --

    async def _poll(self, handle: JobHandle) -> JobUpdate:
        url = f"{self._base_url}/api/v1/jobs/recordInfo"
        response = await self._send("GET", url, Op.STATUS, handle.model, params={"taskId": handle.provider_job_id})
        envelope = _envelope(response)
        if envelope is None:
            raise self._unexpected(response, Op.STATUS, "not a {code, msg, data} envelope")
        data = envelope.data
        if not isinstance(data, dict):
            raise self._unexpected(response, Op.STATUS, "no data object")
        state = _text(data.get("state")).lower()
        usage = self._kie_usage(data)
        if state in _KIE_QUEUED:
            return JobUpdate(status=UpdateStatus.QUEUED)
        if state in _KIE_RUNNING:
            return JobUpdate(status=UpdateStatus.RUNNING, progress=_progress(data.get("progress")))
        if state == "success":
            urls = _kie_result_urls(data.get("resultJson"))
            return self._finished(handle, urls, usage, f"resultJson={_text(data.get('resultJson'))[:200]!r}")
        if state == "fail":
            return self._failure(
                handle, _text(data.get("failCode")), _text(data.get("failMsg")), f"state={state}", usage
            )
        if not state:
            raise self._unexpected(response, Op.STATUS, "no state")
        # A state the docs do not list: keep polling (the runner's deadline bounds it) rather than
        # fail a job that may well be working.
        log.warning("kie job %s: unknown state %s, treated as running", handle.provider_job_id, shown(state))
        return JobUpdate(status=UpdateStatus.RUNNING)

    @staticmethod
    def _kie_usage(data: dict[str, Any]) -> dict[str, Any]:
        cost = data.get("costTime")  # [client] milliseconds of generation, when present
        if isinstance(cost, int | float) and not isinstance(cost, bool):
            return {"cost_time_ms": cost}
        return {}

    def _finished(self, handle: JobHandle, urls: list[str] | None, usage: dict[str, Any], raw: str) -> JobUpdate:
        where = f"{self.name} {handle.model} {handle.provider_job_id}"
        if urls is None:
            unreadable = Outcome(
                ErrorCategory.TRANSIENT,
                f"{self.label} said the image was ready but sent a result the bot could not read. "
                "Try again in a minute.",
            )
            return self._ended(unreadable, f"{where}: success with an unreadable result ({raw})", usage)
        if not urls:
            return self._ended(NO_IMAGE, f"{where}: finished without an image URL", usage)
        # Results are plain URLs; the delivery step downloads and sniffs them (Kie's expire in ~24 h).
        return JobUpdate(status=UpdateStatus.SUCCEEDED, images=[ImageRef(url=u) for u in urls], usage=usage)

    def _failure(
        self,
        handle: JobHandle,
        code: str,
        message: str,
        state: str,
        usage: dict[str, Any],
        *,
        cancelled: bool = False,
    ) -> JobUpdate:
        label = self.label
        parts = [f"{self.name} {handle.model} {handle.provider_job_id}: {state}"]
        if code:
            parts.append(f"code={shown(code)}")
        if message:
            parts.append(f"message={message[:300]!r}")
        category = ErrorCategory.CANCELLED if cancelled else _classify_failure(code, message)
        if cancelled:
            # Neither API documents cancelling; a cancelled status can only come from their side.
            text = f"{label} cancelled the job, so no image was made. Start a new one."
        elif category is ErrorCategory.CONTENT_BLOCKED:
            text = f"{label}'s safety filter blocked this request. Rephrase the prompt or change the images."
        elif category is ErrorCategory.BAD_INPUT:
            text = (
                f"{label} could not use the request's settings or reference images. Check that the images "
                "are still reachable (re-attach them) and try again."
            )
        elif code or message:
            text = f"{label} failed while generating the image (a temporary problem). Try again in a minute."
        else:
            text = (
                f"{label} could not generate the image and did not say why. Try again; if it keeps failing, "
                "tell the server's moderators."
            )
        status = UpdateStatus.CANCELLED if cancelled else UpdateStatus.FAILED
        return self._ended(Outcome(category, text, status), " ".join(parts), usage)

    def _gone(self, handle: JobHandle, exc: ProviderError) -> JobUpdate:
        submitted = handle.extra.get("submitted_at")
        young = (
            isinstance(submitted, int | float)
            and not isinstance(submitted, bool)
            and time.time() - submitted < NOT_FOUND_GRACE_SECONDS
        )
        if young:
            # [client] Kie's record can lag its creation; "not found" this soon means "not yet".
            log.info("%s job %s not visible yet: %s", self.name, handle.provider_job_id, exc.detail)
            return JobUpdate(status=UpdateStatus.QUEUED)
        return super()._gone(handle, exc)

    # -- cancel and check --

    async def cancel(self, handle: JobHandle) -> bool:
        """Neither API documents a cancel call ([kie], [sc]): nothing is sent, the job runs its course."""
        log.debug("%s has no cancel; job %s keeps running upstream", self.name, handle.provider_job_id)
        return False

    async def check(self) -> ProviderCheck:
        # [S] Kie's credit endpoint (docs.kie.ai common-api/get-account-credits): free, read-only, and
        # proves the key. Its envelope code decides (401 bad key), as everywhere on Kie.
        url = f"{self._base_url}/api/v1/chat/credit"
        try:
            response = await self._client.get(
                url, headers=self._headers, timeout=self._timeout, extensions=self._answer_bounds
            )
        except httpx.TransportError as exc:
            return unreachable(url, exc)
        envelope = _envelope(response)
        code = envelope.code if envelope is not None else response.status_code
        if code in (401, 403):
            return key_rejected(response, [self._api_key])
        if envelope is not None and code == 200:
            credits = envelope.data
            # A balance as JSON number of hundreds of digits cannot be formatted as a float (OverflowError).
            if isinstance(credits, int | float) and not isinstance(credits, bool) and abs(credits) < 1e15:
                note = " (generation will fail with 402 until topped up)" if credits <= 0 else ""
                return ProviderCheck(True, True, f"key accepted; {credits:g} credits left{note}")
            return ProviderCheck(True, True, "key accepted (credit balance not readable)")
        return ProviderCheck(True, None, f"reachable, but answered code {code}; key not proven")

    # -- errors: [kie] codes (docs/providers.md 8.3), on top of the shared ladder --

    def _code(self, response: httpx.Response) -> int:
        # The envelope's code decides, so HTTP 429 + code 429 and HTTP 200 + code 429 take one path.
        # A gateway's 504 is the gateway's word whatever the body; bodies without an envelope (a
        # proxy's HTML 502) are read by HTTP status.
        envelope = _envelope(response) if response.status_code != 504 else None
        if envelope is not None and envelope.code != 200:
            return envelope.code
        return response.status_code

    def _error(self, answer: ErrorAnswer) -> ProviderError:
        code, label, kw = answer.code, self.label, answer.kw
        if code == 422 and answer.op is Op.STATUS and any(w in answer.text.lower() for w in _NOT_FOUND_WORDS):
            # [client] Kie: {"code":422,"msg":"recordInfo is null"} for a task it does not know.
            return super()._error(replace(answer, code=404))
        # 455 (maintenance) lasts longer than a call's backoff, and 505 (feature disabled) will not
        # change on a retry: neither is retried, failing over beats waiting (docs/providers.md 8.3).
        if code == 455:
            return TransientError(f"{label} is down for maintenance. Try again later.", **kw)
        if code == 501:
            return TransientError(
                f"{label} could not generate the image (a temporary problem). Try again in a minute.", **kw
            )
        if code == 505:
            return AuthError(
                f"{label} has switched this feature off for the bot's account. The bot owner has to check "
                f"the {label} dashboard or use another provider.",
                **kw,
            )
        return super()._error(answer)


class SinancodeProvider(KieProvider):
    """The sinancode proxy in front of Kie: Kie's fields and failures, its own paths, no envelope."""

    name = "sinancode"
    label = "sinancode"
    key_env = "SINANCODE_API_KEY"
    default_base_url = "https://api.sinancode.com/v1"
    MODELS: ClassVar[dict[str, Capabilities]] = SINANCODE_MODELS

    @classmethod
    def _options(cls, settings: Settings) -> dict[str, Any]:
        # Only kie.ai documents callBackUrl for these models; sinancode's is unconfirmed.
        return {**super()._options(settings), "callback_url": None}

    @property
    def finds_lost_tasks(self) -> bool:
        return False  # its creates carry no callBackUrl

    def _create(
        self, caps: Capabilities, fields: dict[str, Any], job_id: str | None = None
    ) -> tuple[str, dict[str, Any]]:
        return f"{self._base_url}/generate/k/{quote(caps.provider_model, safe='')}", fields

    def _task_id(self, response: httpx.Response) -> object:
        body = json_object(response) or {}
        value = body.get("task_id")  # [sc]
        nested = body.get("data")
        if value is None and isinstance(nested, dict):
            value = nested.get("task_id") or nested.get("taskId")  # [U] an enveloped variant
        return value

    async def _poll(self, handle: JobHandle) -> JobUpdate:
        url = f"{self._base_url}/tasks/{quote(handle.provider_job_id, safe='')}"
        response = await self._send("GET", url, Op.STATUS, handle.model)
        data = self._require_json(response, Op.STATUS)
        if "status" not in data and isinstance(data.get("data"), dict):
            data = data["data"]  # [U] tolerance for an enveloped variant
        raw = data.get("status")
        if not isinstance(raw, str) or not raw.strip():
            raise self._unexpected(response, Op.STATUS, "no status")
        status = raw.strip().lower()
        if status in _SC_DONE:
            urls = _sinancode_result_urls(data.get("result"))
            return self._finished(handle, urls, {}, f"result={str(data.get('result'))[:200]!r}")
        if status in _SC_FAILED | _SC_CANCELLED:
            # [sc] error_msg is "friendly ... (fallback to error_code if empty)".
            return self._failure(
                handle,
                _text(data.get("error_code")),
                _text(data.get("error_msg")),
                f"status={status}",
                {},
                cancelled=status in _SC_CANCELLED,
            )
        if status in _SC_RUNNING:
            return JobUpdate(status=UpdateStatus.RUNNING)
        return JobUpdate(status=UpdateStatus.QUEUED)  # [client] "anything else" is queued

    async def check(self) -> ProviderCheck:
        # A task that cannot exist: sinancode answers 401/403 for a bad key and 404 for a good one.
        return await self._probe(f"{self._base_url}/tasks/bananacord-key-check")

    def _code(self, response: httpx.Response) -> int:
        return response.status_code  # no envelope: the HTTP status decides
