"""The ledger's invariants, checked against the jobs they charge: `bananacord db audit`, and the soaks' verdict.

Members are charged only for images they received (bot/store/ledger.py). Every job accepted under quotas
holds one reservation; it ends with exactly one settlement, written in the same transaction as the end: a
commit of the reserved units if the job was delivered, a refund of them otherwise; a job still running has
none. So over the whole ledger, units reserved + refunded == committed + still reserved, and the job's own
``charge_state`` says the same as its rows. Grants (rows without a job) change allowances, not charges, and
are left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from bot.models import TERMINAL_STATES, JobState
from bot.store.ledger import settled_state

_TERMINAL = {str(s) for s in TERMINAL_STATES}
_DELIVERED = str(JobState.DELIVERED)


@dataclass(frozen=True)
class JobCharge:
    """What the audit reads of a job's row."""

    state: str
    charge_state: str | None


@dataclass(frozen=True)
class LedgerRow:
    job_id: str
    kind: str  # reserve, commit, refund (grants carry no job)
    units: int


@dataclass
class LedgerTotals:
    reserved: int = 0
    committed: int = 0
    refunded: int = 0  # negative: refund rows give units back
    open: int = 0  # units still reserved by jobs with no settlement

    @property
    def adds_up(self) -> bool:
        """Every unit reserved was charged, given back, or is still held by a running job."""
        return self.reserved + self.refunded == self.committed + self.open

    @property
    def balanced(self) -> bool:
        """Adds up with nothing still held: the ledger of a bot whose jobs have all ended."""
        return self.open == 0 and self.adds_up


@dataclass
class LedgerAudit:
    totals: LedgerTotals = field(default_factory=LedgerTotals)
    charged_twice: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # any other broken invariant, one line each
    jobs_charged: int = 0  # jobs with a reservation
    running: int = 0  # of them, still unfinished (their reservation open, as it should be)

    @property
    def sound(self) -> bool:
        """Every invariant holds. Units still reserved by running jobs are not a fault: the ledger of a
        running bot is sound when reserved + refunded == committed + what its running jobs hold."""
        return not self.charged_twice and not self.problems and self.totals.adds_up


class LedgerAuditor:
    """Judges the ledger one job at a time, so a caller can stream a ledger of millions of rows through it
    (`bananacord db audit`) or hand it a soak's whole ledger (``audit_ledger``)."""

    def __init__(self, *, missing_job: bool = True) -> None:
        """``missing_job``: a row naming no job is a fault (jobs are never deleted); a caller that reads only
        some jobs passes False."""
        self.result = LedgerAudit()
        self._missing_job = missing_job

    def job(self, job_id: str, job: JobCharge | None, rows: Iterable[tuple[str, int]]) -> None:
        """One job's ledger ``rows`` (kind, units), with its row (None: no such job)."""
        result, totals = self.result, self.result.totals
        kinds = list(rows)
        for kind, units in kinds:
            if kind == "reserve":
                totals.reserved += units
            elif kind == "commit":
                totals.committed += units
            elif kind == "refund":
                totals.refunded += units
        commits = [u for k, u in kinds if k == "commit"]
        if len(commits) > 1:
            result.charged_twice.append(f"job {job_id}: {len(commits)} commit rows")
        reserves = [u for k, u in kinds if k == "reserve"]
        settled = [(k, u) for k, u in kinds if k in ("commit", "refund")]
        if len(reserves) != 1:
            result.problems.append(f"job {job_id}: {len(reserves)} reserve rows")
            return
        units = reserves[0]
        if job is None:
            if self._missing_job:
                result.problems.append(f"job {job_id}: in the ledger, but no such job")
            return
        result.jobs_charged += 1
        if job.state not in _TERMINAL:
            result.running += 1
            totals.open += units
            if settled:
                result.problems.append(f"job {job_id}: settled while still {job.state}")
            elif job.charge_state != "reserved":
                result.problems.append(f"job {job_id} ({job.state}): charge state {job.charge_state}, not reserved")
            return
        if len(settled) != 1:
            result.problems.append(f"job {job_id} ({job.state}): {len(settled)} settlement rows")
            if not settled:
                totals.open += units
            return
        kind, amount = settled[0]
        want_kind, want_amount = ("commit", units) if job.state == _DELIVERED else ("refund", -units)
        if (kind, amount) != (want_kind, want_amount):
            expected = f"expected {want_kind} {want_amount}"
            result.problems.append(f"job {job_id} ({job.state}): settled as {kind} {amount}, {expected}")
        elif job.charge_state != settled_state(kind == "commit"):
            result.problems.append(f"job {job_id} ({job.state}): charge state {job.charge_state}, ledger says {kind}")

    def unreserved(self, job_id: str, job: JobCharge) -> None:
        """A job whose row says it was charged (``charge_state`` set) and that holds no reservation."""
        self.result.problems.append(f"job {job_id} ({job.state}): charge state {job.charge_state}, no reservation")


def audit_ledger(jobs: Mapping[str, JobCharge], rows: Iterable[LedgerRow], *, missing_job: bool = True) -> LedgerAudit:
    """Check ``rows`` (the ledger's job rows) against ``jobs`` (every job's row, by id)."""
    auditor = LedgerAuditor(missing_job=missing_job)
    by_job: dict[str, list[tuple[str, int]]] = {}
    for row in rows:
        by_job.setdefault(row.job_id, []).append((row.kind, row.units))
    for job_id, kinds in sorted(by_job.items()):
        auditor.job(job_id, jobs.get(job_id), kinds)
    for job_id, job in sorted(jobs.items()):
        if job.charge_state is not None and not any(k == "reserve" for k, _ in by_job.get(job_id, ())):
            auditor.unreserved(job_id, job)
    return auditor.result
