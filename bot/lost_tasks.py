"""Creates whose answer was lost, found again through the provider's callback.

A create that times out, or is answered 504 or a 2xx without a task id, may have made a task the provider
bills. None of these APIs takes an idempotency key, so the create is never sent again, and by default the job
fails "uncertain" (refunded). kie.ai can do better when callbacks are enabled: the bot puts the job's id in
``callBackUrl`` (bot/providers/kie.py ``callback_url_for``), Kie calls back when the task ends, and the
task's record (``recordInfo``) returns the create body as sent, ``callBackUrl`` included. So such a job waits,
still "Generating", for up to ``[callbacks] lost_task_wait_seconds``; a signed callback naming a task the bot
does not know makes the runner ask Kie whose task it is, and the job that sent it adopts it as if the create's
answer had arrived. A job still waiting when the time is up fails "uncertain" as before, refunded; so does
one whose create was in flight when the bot stopped, if no callback names its task by then.

The wait is kept in the job's row as it always was (``state = queued`` with ``submit_started_at``): nothing
new is written, and a restart finds the job waiting. What the callback claims is never trusted: only Kie's
own record, asked with the bot's key, names the job.
"""

from __future__ import annotations

from collections.abc import Mapping

from bot.models import JobState
from bot.providers.base import FindsLostTasks, Provider
from bot.store.jobs import Job


def lost_task_finder(providers: Mapping[str, Provider], name: str) -> FindsLostTasks | None:
    """The provider ``name`` if it can trace a task back to its job as configured, else None."""
    provider: object = providers.get(name)  # any Provider may also be one (mypy cannot intersect them)
    if isinstance(provider, FindsLostTasks) and provider.finds_lost_tasks:
        return provider
    return None


def create_unanswered(job: Job) -> bool:
    """A create left for this job and its answer never came: it may have made a task."""
    return job.state is JobState.QUEUED and job.submit_started_at is not None


def _create_left(job: Job) -> float:
    return job.submit_started_at if job.submit_started_at is not None else job.created_at


def waits_until(job: Job, wait_seconds: float) -> float:
    """When a job whose create went unanswered stops waiting for its task's callback: ``wait_seconds`` after
    the create left, and no later than the job's deadline."""
    return min(job.deadline_at, _create_left(job) + wait_seconds)


def gave_up_message(job: Job, wait_seconds: float) -> str:
    """What the member reads when the wait ends with no task found: how long it was (a deadline may have
    cut it short of ``wait_seconds``)."""
    minutes = max(1, round((waits_until(job, wait_seconds) - _create_left(job)) / 60))
    return (
        "The provider never confirmed this request, and no image from it was reported within "
        f"{minutes} minute(s), so the bot stopped waiting (it is not sent again, to avoid paying twice). "
        "You were not charged; try again."
    )
