"""The ledger's invariants (bot/ledger_audit.py): a ledger written the way the store settles jobs is sound, and
each way of breaking it is named."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bot.ledger_audit import JobCharge, LedgerRow, audit_ledger

RUNNING, DELIVERED, FAILED, CANCELLED = "running", "delivered", "failed", "cancelled"


def _written(outcomes: list[tuple[str, int]]) -> tuple[dict[str, JobCharge], list[LedgerRow]]:
    """Jobs and ledger rows as bot/store/ledger.py writes them: a reservation, then on the job's end one commit
    (delivered) or one refund (any other end) of its units."""
    jobs: dict[str, JobCharge] = {}
    rows: list[LedgerRow] = []
    for n, (state, units) in enumerate(outcomes):
        job_id = f"{n:016x}"
        rows.append(LedgerRow(job_id, "reserve", units))
        if state == RUNNING:
            jobs[job_id] = JobCharge(state, "reserved")
        elif state == DELIVERED:
            rows.append(LedgerRow(job_id, "commit", units))
            jobs[job_id] = JobCharge(state, "committed")
        else:
            rows.append(LedgerRow(job_id, "refund", -units))
            jobs[job_id] = JobCharge(state, "refunded")
    return jobs, rows


outcomes = st.lists(
    st.tuples(st.sampled_from([RUNNING, DELIVERED, FAILED, CANCELLED]), st.integers(1, 40)), min_size=1, max_size=30
)


@given(outcomes)
def test_a_ledger_written_as_the_store_writes_it_is_sound(jobs_and_units: list[tuple[str, int]]) -> None:
    jobs, rows = _written(jobs_and_units)
    jobs["ffffffffffffffff"] = JobCharge(DELIVERED, None)  # quotas were off for it: no rows, none expected
    audit = audit_ledger(jobs, rows)
    assert audit.sound, audit.problems
    running = [units for state, units in jobs_and_units if state == RUNNING]
    assert (audit.running, audit.totals.open) == (len(running), sum(running))
    assert audit.totals.committed == sum(units for state, units in jobs_and_units if state == DELIVERED)


@given(outcomes, st.data())
def test_any_row_lost_or_doubled_breaks_it(jobs_and_units: list[tuple[str, int]], data: st.DataObject) -> None:
    jobs, rows = _written(jobs_and_units)
    victim = data.draw(st.sampled_from(rows))
    if data.draw(st.booleans()):
        rows.remove(victim)
    else:
        rows.append(victim)
    assert not audit_ledger(jobs, rows).sound


def test_each_fault_is_named() -> None:
    jobs, rows = _written([(DELIVERED, 3), (FAILED, 2), (RUNNING, 4), (CANCELLED, 1), (DELIVERED, 5)])
    ids = sorted(jobs)
    rows.append(LedgerRow(ids[0], "commit", 3))  # a second charge
    rows = [
        LedgerRow(r.job_id, "commit", 2) if (r.job_id, r.kind) == (ids[1], "refund") else r for r in rows
    ]  # a failed job charged
    rows.append(LedgerRow(ids[2], "refund", -4))  # settled while running
    rows = [r for r in rows if (r.job_id, r.kind) != (ids[3], "refund")]  # ended, never settled
    jobs[ids[4]] = JobCharge(DELIVERED, "refunded")  # its row says otherwise than its ledger
    rows.append(LedgerRow("0123456789abcdef", "reserve", 1))  # no such job
    audit = audit_ledger(jobs, rows)
    assert audit.charged_twice == [f"job {ids[0]}: 2 commit rows"]
    assert audit.problems == [
        f"job {ids[0]} (delivered): 2 settlement rows",
        f"job {ids[1]} (failed): settled as commit 2, expected refund -2",
        f"job {ids[2]}: settled while still running",
        f"job {ids[3]} (cancelled): 0 settlement rows",
        f"job {ids[4]} (delivered): charge state refunded, ledger says commit",
        "job 0123456789abcdef: in the ledger, but no such job",
    ]
    assert not audit.sound
