"""The error tree Bananacord owns.

Every class carries a ``user_message`` (safe to show in Discord or on the CLI) and, separately, a
``detail`` for logs. Raw exception text, URLs and keys never go into ``user_message``.

    BananacordError
    ├── ConfigError            a setting is missing or malformed (start-up, `bananacord check`)
    ├── InvalidRequestError    the member's input does not fit the model (checked before any request)
    ├── JobNotFoundError       a job id that does not exist
    ├── DeliveryError          the result could not be downloaded, decoded or uploaded
    └── ProviderError          a provider call failed; ``category`` follows docs/providers.md 8.3
        ├── BadInputError          the provider rejected the request's values
        ├── ContentBlockedError    the provider's safety filter blocked the prompt or image
        ├── NoImageError           the model answered without an image
        ├── RateLimitedError       429 or equivalent; ``retry_after`` seconds when known
        │   └── OverloadedError    the provider is overloaded and says when to come back (Gemini's 503)
        ├── OutOfCreditError       the provider account has no credit left
        ├── AuthError              key rejected or model not allowed for this key
        ├── TransientError         5xx, timeouts, provider-internal failures
        └── SubmitUncertainError   a create was sent but its answer was lost: it may have been accepted
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCategory(StrEnum):
    """Shared failure categories (docs/providers.md 8.3), stored on the job row."""

    BAD_INPUT = "bad_input"
    CONTENT_BLOCKED = "content_blocked"
    NO_IMAGE = "no_image"
    RATE_LIMITED = "rate_limited"
    OUT_OF_CREDIT = "out_of_credit"
    AUTH = "auth"
    TRANSIENT = "transient"
    UNCERTAIN = "uncertain"
    DELIVERY = "delivery"
    # The bot's own, as DELIVERY is: a reference image it could not fetch to check (bot/references.py), before
    # any provider saw the request. Filed as BAD_INPUT, it read "The provider refused the request".
    REFERENCE = "reference"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    INTERNAL = "internal"


class BananacordError(Exception):
    """Base of every error we raise on purpose."""

    user_message: str = "Something went wrong."

    def __init__(self, user_message: str | None = None, *, detail: str | None = None) -> None:
        if user_message is not None:
            self.user_message = user_message
        self.detail = detail or self.user_message
        super().__init__(self.detail)


class ConfigError(BananacordError):
    """A setting is missing or malformed; the message names the setting and the fix."""

    def __init__(self, setting: str, problem: str, fix: str) -> None:
        self.setting, self.problem, self.fix = setting, problem, fix
        super().__init__(f"{setting}: {problem}. {fix}")


class InvalidRequestError(BananacordError):
    """The member's input does not fit the chosen model; nothing was sent or charged."""


class ReferenceFetchError(InvalidRequestError):
    """A reference's link did not give the file (a 4xx, a link the bot does not fetch, or, when a provider's
    adapter fetches it itself, a failed download): the job ends as such (ErrorCategory.REFERENCE,
    bot/job_submit.py), not as the provider's refusal, which never saw it. A file that came but is unusable
    (too large, not an image) is a plain InvalidRequestError."""


class JobNotFoundError(BananacordError):
    user_message = "That job no longer exists."


class DeliveryError(BananacordError):
    """Download, decode or upload of a result failed. ``retryable`` failures are tried again later."""

    user_message = "The image was generated but could not be delivered."

    def __init__(self, user_message: str | None = None, *, detail: str | None = None, retryable: bool = False) -> None:
        self.retryable = retryable
        super().__init__(user_message, detail=detail)


class ReferenceUnavailableError(DeliveryError):
    """A reference could not be downloaded for a reason that may pass (a timeout, a 5xx, a 429): the job tries
    again later (bot/job_submit.py), up to a few times."""


class UploadTooLargeError(DeliveryError):
    """Discord refused the upload as too large (413, code 40005). ``limit_now``: the server's upload limit as
    the bot reads it now, when known; lower than the one the job was prepared for (a boost lost while it ran),
    the images are prepared again for it (bot/job_delivery.py)."""

    user_message = "The image is larger than this channel accepts."

    def __init__(self, *, limit_now: int | None, detail: str | None = None) -> None:
        self.limit_now = limit_now
        super().__init__(detail=detail)


class MessageGoneError(DeliveryError):
    """The job's message was deleted (by its member or a moderator, or with its channel), perhaps while the
    bot was not running to see it go: nothing can be shown there any more, and the job ends as cancelled."""

    user_message = "Its message was deleted, so the image could not be shown. You were not charged."


class ProviderError(BananacordError):
    """A provider call failed. ``retryable`` says whether the same call may be tried again."""

    category: ErrorCategory = ErrorCategory.TRANSIENT
    retryable: bool = False
    user_message = "The image provider failed."

    def __init__(
        self,
        user_message: str | None = None,
        *,
        detail: str | None = None,
        provider: str | None = None,
        status_code: int | None = None,
    ) -> None:
        self.provider = provider
        self.status_code = status_code
        super().__init__(user_message, detail=detail)


class BadInputError(ProviderError):
    category = ErrorCategory.BAD_INPUT
    user_message = "The provider rejected the request's settings."


class ContentBlockedError(ProviderError):
    category = ErrorCategory.CONTENT_BLOCKED
    user_message = "The provider's safety filter blocked this request. Try rephrasing the prompt."


class NoImageError(ProviderError):
    category = ErrorCategory.NO_IMAGE
    user_message = "The model answered without an image. Try again or rephrase the prompt."


class RateLimitedError(ProviderError):
    """``user_message`` says what is limited; when to try again is added from ``retry_after``."""

    category = ErrorCategory.RATE_LIMITED
    retryable = True
    user_message = "The provider is rate limiting us right now."

    def __init__(self, user_message: str | None = None, *, retry_after: float | None = None, **kw: object) -> None:
        super().__init__(user_message, **kw)  # type: ignore[arg-type]
        # What is limited, without when to try again: said too while the bot waits it out itself (its message
        # then says when the bot sends the request again, bot/delivery.py).
        self.what = self.user_message
        self.wait_for(retry_after)

    def wait_for(self, seconds: float | None) -> None:
        """The provider asked for ``seconds`` of quiet (None: it did not say): the member is told when to
        try again, so that a provider asking for ten minutes does not have them try again in one."""
        self.retry_after = seconds
        self.user_message = f"{self.what} {try_again_in(seconds)}"


class OverloadedError(RateLimitedError):
    """The provider is overloaded and says how long that lasts (Gemini's 503 UNAVAILABLE: "retry after 30-60
    s", docs/providers.md 6.6). Not a 429, but the same answer to the bot: nothing was made, and the same
    request may go again after ``retry_after`` seconds. So it is handled as one (bot/providers/_http.py
    waits a short wait within the call and hands a long one to the job runner; bot/job_submit.py fails the
    create over, or puts it back until the wait is over and pauses the provider meanwhile); before, it was a
    temporary fault whose wait nothing past the retry loop read, and one overload ended the job at once."""

    user_message = "The provider is overloaded right now."


def try_again_in(seconds: float | None) -> str:
    """When to try again, as a member reads it: "in a minute" unless a wait says longer, rounded up."""
    if seconds is None or not seconds > 60:  # NaN is not > 60 either
        return "Try again in a minute."
    minutes = -(-seconds // 60)
    if minutes < 90:
        return f"Try again in about {minutes:.0f} minutes."
    hours = min(-(-minutes // 60), 48)  # a hostile Retry-After of years is not worth repeating
    return f"Try again in about {hours:.0f} hours." if hours < 48 else "Try again later."


class OutOfCreditError(ProviderError):
    category = ErrorCategory.OUT_OF_CREDIT
    user_message = "The bot's provider account is out of credit. The server owner has to top it up."


class AuthError(ProviderError):
    category = ErrorCategory.AUTH
    user_message = "The bot's provider key was rejected. The server owner has to check the configuration."


class TransientError(ProviderError):
    category = ErrorCategory.TRANSIENT
    retryable = True
    user_message = "The provider had a temporary failure. Try again shortly."


class SubmitUncertainError(ProviderError):
    category = ErrorCategory.UNCERTAIN
    user_message = (
        "The provider did not confirm the request, so it was not sent again (to avoid paying twice). "
        "You were not charged; try again."
    )
