"""What the bot is doing, for an operator's Prometheus: ``GET /metrics`` on ``[metrics] listen_host:listen_port``.

Counted as it happens, at no cost a job would notice (an increment when a job ends, bot/store/jobs.py ``on_ended``):
the jobs that ended, by how (``state``), why (``category``: bot/errors.py ErrorCategory), provider and model; how
long a delivered one took from the member's asking; the units and estimated dollars charged; the providers' HTTP
answers by status (an httpx response hook) and the requests to them that got none, by why (the client's failure
hook). Read at each scrape, from the rows and the runner (one indexed statement): the requests generating and
waiting their turn, the providers tried last after failing, the gateway's latency.
``prometheus_client`` writes the exposition format; aiohttp (already discord.py's) serves it.

The endpoint answers ``GET /metrics`` and nothing else, and names no member, prompt or secret: labels are states,
providers and models. Keep it on a private address (the default, 127.0.0.1): it is no one else's business.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import httpx
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bot.bounded_site import BoundedSite
from bot.budget import origin_of
from bot.http_terms import AnswerTooLarge, ForbiddenAddressError
from bot.models import JobState
from bot.store import Database
from bot.store.jobs import Job

log = logging.getLogger(__name__)

PATH = "/metrics"
# Connections open at once (Prometheus holds one; a few more for a person's curl), past which the oldest not being
# answered is closed, and how long one may idle or take to send its request: the port may be reachable by others
# (in Docker it listens on 0.0.0.0 for the scraper's container), and sockets held open are file descriptors the
# bot needs (bot/bounded_site.py).
MAX_CONNECTIONS = 16
IDLE_SECONDS = 3.0
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# How long a delivered request took from its asking, in seconds: provider times run from a few seconds to minutes.
SECONDS_BUCKETS = (5.0, 10.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0)
# Requests generating and waiting their turn: the reserved rows (bot/store/migrations/0003_quotas.sql's partial
# index), so a scrape reads the unfinished jobs, not the table.
UNFINISHED_SQL = (
    "SELECT CASE WHEN waits_for IS NULL THEN 'generating' ELSE 'waiting' END, COUNT(*) FROM jobs "
    "WHERE charge_state = 'reserved' GROUP BY 1"
)


@dataclass
class Snapshot:
    """What a scrape reads at its moment (``Metrics.snapshot``), for the collector to give."""

    unfinished: dict[str, int] = field(default_factory=dict)
    tried_last: dict[str, bool] = field(default_factory=dict)
    latency: float | None = None


class Metrics:
    """The bot's figures, in a registry of its own (not the process-wide default: two bots in one test process)."""

    def __init__(self, providers_by_origin: Mapping[str, str]) -> None:
        # The database the scrape reads (set once it is open), and which provider each origin is (bot/budget.py).
        self.db: Database | None = None
        self.providers_by_origin = dict(providers_by_origin)
        self.registry = CollectorRegistry(auto_describe=True)
        self.ended = Counter(
            "bananacord_jobs_ended",
            "Jobs that ended, by how (delivered, failed, blocked, cancelled, expired), why (the error's category, "
            "none for delivered), provider and model",
            ("state", "category", "provider", "model"),
            registry=self.registry,
        )
        self.took = Histogram(
            "bananacord_job_seconds",
            "Seconds from a member's asking to their image delivered, by provider and model",
            ("provider", "model"),
            buckets=SECONDS_BUCKETS,
            registry=self.registry,
        )
        self.units = Counter(
            "bananacord_charged_units", "Quota units charged for images delivered", ("model",), registry=self.registry
        )
        self.usd = Counter(
            "bananacord_charged_usd",
            "Estimated US dollars of the images delivered, by provider",
            ("provider",),
            registry=self.registry,
        )
        self.answers = Counter(
            "bananacord_provider_answers",
            "Providers' HTTP answers to the bot, by provider and status (429: rate limited; 5xx: their trouble)",
            ("provider", "status"),
            registry=self.registry,
        )
        self.unanswered = Counter(
            "bananacord_provider_unanswered",
            "Requests to providers that got no answer, by provider and why (connect: it never reached them; "
            "timeout; dropped: the connection ended mid-answer; too_large; redirects; refused: the address guard)",
            ("provider", "reason"),
            registry=self.registry,
        )
        self._now = Snapshot()
        self.registry.register(_ScrapeTime(self))
        # Set by the app: which providers are tried last now, and the gateway's latency (None: not connected).
        self.tried_last: Callable[[], dict[str, bool]] = dict
        self.latency: Callable[[], float | None] = lambda: None

    def job_ended(self, job: Job) -> None:
        """A job has reached its end (the job store calls this after writing it; nothing here may raise into it)."""
        try:
            category = str(job.error_category) if job.error_category is not None else "none"
            self.ended.labels(str(job.state), category, job.provider, job.model).inc()
            if job.state is not JobState.DELIVERED:
                return
            if job.finished_at is not None:
                self.took.labels(job.provider, job.model).observe(max(0.0, job.finished_at - job.created_at))
            if job.charge_state == "committed" and job.charge_units > 0:
                # A member's image, charged (the command line's jobs hold no reservation and charge nothing).
                self.units.labels(job.model).inc(job.charge_units)
            if job.cost_micro_usd and job.cost_micro_usd > 0:
                self.usd.labels(job.provider).inc(job.cost_micro_usd / 1_000_000)
        except Exception as exc:
            log.warning("metrics: job %s's end not counted: %s", job.id, exc)

    async def provider_answered(self, response: httpx.Response) -> None:
        """An httpx response hook: each answer from a provider's origin, by its status (downloads of results from
        elsewhere are not counted)."""
        provider = self.providers_by_origin.get(origin_of(str(response.request.url)))
        if provider is not None:
            self.answers.labels(provider, str(response.status_code)).inc()

    def provider_unanswered(self, request: httpx.Request, exc: httpx.RequestError) -> None:
        """A failure hook (bot/transport.py CookielessClient): a request to a provider's origin that got no
        answer, by why. Nothing here may raise: the caller is owed the request's own error."""
        try:
            provider = self.providers_by_origin.get(origin_of(str(request.url)))
            if provider is not None:
                self.unanswered.labels(provider, unanswered_reason(exc)).inc()
        except Exception as failed:
            log.warning("metrics: a request with no answer not counted: %s", type(failed).__name__)

    async def exposition(self) -> bytes:
        """The metrics as Prometheus reads them, with this moment's readings."""
        unfinished: dict[str, int] = {}
        if self.db is not None:
            async with self.db.read() as conn, conn.execute(UNFINISHED_SQL) as cursor:
                unfinished = {str(kind): int(count) for kind, count in await cursor.fetchall()}
        self._now = Snapshot(unfinished, self.tried_last(), self.latency())
        return generate_latest(self.registry)

    async def serve(self, request: web.Request) -> web.Response:
        try:
            body = await self.exposition()
        except Exception as exc:
            # The database busy, say: the scrape fails (Prometheus records it), the bot goes on.
            log.warning("metrics: could not read them for a scrape: %s", type(exc).__name__)
            return web.Response(status=503, text="metrics unavailable just now\n")
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


def unanswered_reason(exc: httpx.RequestError) -> str:
    """Why a request got no answer, in the few words an operator's alert would use."""
    if isinstance(exc, ForbiddenAddressError):
        return "refused"
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return "connect"  # the request never left: the provider down, or unreachable from here
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, AnswerTooLarge):
        return "too_large"
    if isinstance(exc, httpx.TooManyRedirects):
        return "redirects"
    return "dropped"


class _ScrapeTime(Collector):
    """The readings of the scrape under way (``Metrics.exposition`` takes them first)."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterable[Metric]:
        now = self.metrics._now
        unfinished = GaugeMetricFamily(
            "bananacord_requests_unfinished",
            "Members' images not yet ended: generating, or waiting their turn (bot/waiting_requests.py)",
            labels=("kind",),
        )
        for kind in ("generating", "waiting"):
            unfinished.add_metric((kind,), now.unfinished.get(kind, 0))
        yield unfinished
        tried_last = GaugeMetricFamily(
            "bananacord_provider_tried_last",
            "1 while a provider that failed (out of credit, key refused) is tried after the others",
            labels=("provider",),
        )
        for provider, last in sorted(now.tried_last.items()):
            tried_last.add_metric((provider,), 1.0 if last else 0.0)
        yield tried_last
        if now.latency is not None:
            yield GaugeMetricFamily(
                "bananacord_gateway_latency_seconds", "Discord's gateway heartbeat latency", value=now.latency
            )


class MetricsServer:
    """``GET /metrics`` on its own address, nothing else, with at most ``MAX_CONNECTIONS`` open."""

    def __init__(self, metrics: Metrics, *, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.metrics = metrics
        self._answering: set[object] = set()  # the connections (aiohttp's protocols) being answered now
        app = web.Application(client_max_size=1024)
        app.router.add_get(PATH, self._serve)
        # aiohttp logs a request it cannot parse at ERROR with a traceback: from anyone who can reach the port, a
        # flood of them would be a flood of the bot's log. Nothing of it is the operator's to fix.
        quiet = logging.getLogger(f"{__name__}.server")
        quiet.setLevel(logging.CRITICAL)
        self._runner = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            keepalive_timeout=IDLE_SECONDS,
            shutdown_timeout=1.0,
            logger=quiet,
        )

    async def _serve(self, request: web.Request) -> web.Response:
        self._answering.add(request.protocol)
        try:
            return await self.metrics.serve(request)
        finally:
            self._answering.discard(request.protocol)

    async def start(self) -> None:
        await self._runner.setup()
        site = BoundedSite(
            self._runner, self.host, self.port, limit=MAX_CONNECTIONS, busy=lambda handler: handler in self._answering
        )
        try:
            await site.start()
        except BaseException:
            await self._runner.cleanup()
            raise
        self.port = self._runner.addresses[0][1]  # the port given, or the one the system chose for port 0
        log.info("metrics served at http://%s:%s%s", self.host, self.port, PATH)

    async def stop(self) -> None:
        await self._runner.cleanup()
