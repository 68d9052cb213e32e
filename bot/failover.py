"""Failover: a job no provider accepted moves to the next provider serving its model.

A preference is a default, never a refusal: a job no other provider takes as it is moves without the
options the member's /preferences filled in that the next provider does not offer (bot/preferences.py
``without_defaults``), and its request (and its embed) says so from then on.

Only for the provider's own faults (transient, a rate limit past the retry budget, no credit, a rejected
key) and only before any provider accepted the job: the member's input and content decisions are the same
everywhere, and an accepted job is never sent twice (docs/architecture.md section 3.3). A create whose
provider paused every request for a while (a 429 with a long Retry-After) moves on without waiting; one
refused with such a wait pauses its provider for it (``hold_off``) whether it moves or waits it out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from bot.budget import RequestBudget
from bot.catalogue import Catalogue
from bot.errors import ErrorCategory, InvalidRequestError, ProviderError, RateLimitedError
from bot.models import GenerationRequest, JobState, ProviderAttempt
from bot.preferences import without_defaults
from bot.providers.base import Capabilities, Provider
from bot.quotas import QuotaExceededError
from bot.routing import choose_provider
from bot.store.agenda import DueJob
from bot.store.jobs import InTransaction, Job, JobStore

log = logging.getLogger(__name__)

# Provider faults that may move a never-accepted job to the next provider.
FAILOVER_CATEGORIES = frozenset(
    {ErrorCategory.TRANSIENT, ErrorCategory.RATE_LIMITED, ErrorCategory.OUT_OF_CREDIT, ErrorCategory.AUTH}
)
# A create whose provider paused every request (a 429) for at least this long moves to the next provider
# of its route instead of waiting: a member should not wait up to a minute on a provider that asked to
# be left alone while another could serve now. Shorter pauses (Retry-After: 1 is routine) are waited out.
LEAVE_PAUSED_PROVIDER_SECONDS = 10.0


def asked_wait(exc: RateLimitedError) -> float | None:
    """The wait ``exc``'s provider asked for before the same request goes again (a 429's Retry-After or
    RetryInfo, Gemini's overload), when it is LEAVE_PAUSED_PROVIDER_SECONDS or more; None for a shorter or
    unknown one, which the call's own retries waited out already (bot/providers/_http.py)."""
    wait = exc.retry_after
    return wait if wait is not None and wait >= LEAVE_PAUSED_PROVIDER_SECONDS else None


class Failover:
    """Where the job runner's creates go when their provider fails them, or has paused."""

    def __init__(
        self,
        store: JobStore,
        catalogue: Catalogue | None,
        providers: Mapping[str, Provider],
        budgets: Mapping[str, RequestBudget],
        clock: Callable[[], float],
        wake: Callable[[], None],
        repricing: Callable[[Job, GenerationRequest, Capabilities], InTransaction] | None = None,
    ) -> None:
        self.store = store
        # The job's reservation takes the new provider's price, and the units and size of the request as it
        # goes there, in the move's transaction (bot/quotas.py).
        self.repricing = repricing
        self.catalogue = catalogue
        self.providers = providers
        self.budgets = budgets
        self.clock = clock
        self.wake = wake  # the job loop's: a job moved is due at once

    def next_provider(self, job: Job) -> tuple[str, Capabilities, GenerationRequest] | None:
        """The provider a failover would move ``job`` to, and the job's request there: its own, or, where no
        other provider takes that, without the preferences that one does not offer (None: failover is off,
        or no other serves it)."""
        if self.catalogue is None or not self.catalogue.settings.models.failover:
            return None
        # Never back to a provider the job has left, nor to one this runner has no adapter for.
        skip = (
            {t.provider for t in job.tried_providers}
            | {job.provider}
            | (set(self.catalogue.providers) - set(self.providers))
        )
        try:
            provider, caps = choose_provider(self.catalogue, job.request, skip=skip)
        except InvalidRequestError:
            # e.g. a prompt longer than every other provider takes; or a saved default only the providers left
            # offer, which the next one goes without.
            return without_defaults(self.catalogue, job.request, skip=skip)
        return provider, caps, job.request

    async def move(self, job: Job, exc: ProviderError) -> bool:
        """Move a job that no provider accepted, failed with ``exc``, to the next provider serving its
        model; False if there is none (or ``exc`` is no fault of the provider's)."""
        if exc.category not in FAILOVER_CATEGORIES:
            return False
        chosen = self.next_provider(job)
        if chosen is None:
            return False
        candidate, caps, request = chosen
        history = [
            *job.tried_providers,
            ProviderAttempt(provider=job.provider, category=str(exc.category), reason=exc.user_message),
        ]
        now = self.clock()
        cost = caps.price_of(request)
        changed: dict[str, Any] = {"request": request} if request != job.request else {}
        # Always, not only when the price changes: a preference left out (a 4K the next provider does not make)
        # changes the units and size the commit charges, whatever the dollar price does.
        within = self.repricing(job, request, caps) if self.repricing is not None else None
        try:
            await self.store.update(
                job,
                now=now,
                provider=candidate,
                tried_providers=history,
                submit_started_at=None,
                next_poll_at=now,
                cost_micro_usd=cost,
                within=within,
                **changed,
            )
        except QuotaExceededError as refused:
            # The job ends with its provider's own failure, uncharged, as when no other provider serves it.
            log.info("job %s: not moved to %s, refused by the quotas: %s", job.id, candidate, refused)
            return False
        log.info("job %s: failing over from %s to %s (%s)", job.id, job.provider, candidate, exc.category)
        if changed:
            left = sorted(set(job.request.defaulted) - set(request.defaulted))
            log.info("job %s: goes to %s without the preferred %s", job.id, candidate, ", ".join(left))
        self.wake()
        return True

    def hold_off(self, provider: str, exc: RateLimitedError) -> float | None:
        """A create refused with a long wait asked for (``asked_wait``) pauses every request to ``provider`` for
        it, as a 429's answer does (bot/budget.py, obeyed up to a minute), so the other creates move on
        (``leave_paused_provider``) or wait, rather than each be refused in turn. The budget pauses on what the
        adapter reads as a rate limit (a 429, Kie's code 429 in a 200) for the wait it found; Gemini's overload
        is a 503, which paused nothing, and every next job asked again at once. Returns the wait (None: none)."""
        wait = asked_wait(exc)
        budget = self.budgets.get(provider)
        if wait is not None and budget is not None:
            paused = budget.pause(wait)
            log.info(
                "%s asked for %.0f s (%s): its requests are paused for %.0f s", provider, wait, exc.category, paused
            )
        return wait

    async def leave_paused_provider(self, job: Job) -> bool:
        """Move a create off a provider whose 429 paused every request for a while, if another can take it
        (after the references were judged: a job that has left a provider is not judged again)."""
        budget = self.budgets.get(job.provider)
        paused = budget.paused_for() if budget is not None else 0.0
        if paused < LEAVE_PAUSED_PROVIDER_SECONDS:
            return False
        reason = RateLimitedError(retry_after=paused, detail=f"{job.provider} paused for {paused:.0f} s by a 429")
        return await self.move(job, reason)

    async def leaving(self, due: list[DueJob]) -> set[str]:
        """The due creates that will move off a provider paused for LEAVE_PAUSED_PROVIDER_SECONDS or more
        (their step does it: ``leave_paused_provider``): started without waiting for that provider."""
        paused = {name for name, budget in self.budgets.items() if budget.paused_for() >= LEAVE_PAUSED_PROVIDER_SECONDS}
        if not paused or len(self.providers) < 2:  # nowhere to go: no job need be looked at
            return set()
        leaving = set()
        for entry in due:
            if entry.state is JobState.QUEUED and entry.provider in paused:
                job = await self.store.get(entry.id)
                if job is not None and job.submit_started_at is None and self.next_provider(job) is not None:
                    leaving.add(entry.id)
        return leaving
