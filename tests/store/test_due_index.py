"""The loop's index of due jobs (bot/store/due.py) answers exactly as a full scan and sort of every
unfinished job would, whatever the order of writes, removals and reads."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.models import JobState
from bot.store.due import Agenda, DueIndex, DueJob, due_order

IDS = [f"job{i}" for i in range(8)]
TIMES = st.one_of(st.none(), st.sampled_from([0.0, 1.0, 2.0, 2.0, 5.0, 9.0]))


def entry(job_id: str, at: float | None) -> DueJob:
    return DueJob(job_id, JobState.RUNNING, "seaart", None, at, 0.0, None)


def scanned(entries: dict[str, DueJob], now: float, exclude: set[str], limit: int) -> Agenda:
    """What the loop used to compute: every entry looked at, the due ones sorted (stable: ties in the
    order jobs were added)."""
    due = [e for e in entries.values() if (e.next_poll_at is None or e.next_poll_at <= now) and e.id not in exclude]
    later = [e.next_poll_at for e in entries.values() if e.next_poll_at is not None and e.next_poll_at > now]
    due.sort(key=due_order)
    return Agenda(due[:limit], now if len(due) > limit else min(later, default=None))


operations = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.sampled_from(IDS), TIMES),
        st.tuples(st.just("remove"), st.sampled_from(IDS), st.none()),
        st.tuples(
            st.just("due"),
            st.sampled_from([0.5, 2.0, 4.0, 10.0]),
            st.tuples(st.sets(st.sampled_from(IDS), max_size=3), st.integers(1, 5)),
        ),
    ),
    max_size=60,
)


@settings(max_examples=400, deadline=None)
@given(operations)
def test_the_index_answers_as_a_full_scan_would(ops: list[tuple[str, object, object]]) -> None:
    index = DueIndex()
    model: dict[str, DueJob] = {}
    for op, a, b in ops:
        if op == "put":
            assert isinstance(a, str)
            job = entry(a, b if isinstance(b, float) else None)
            index.put(job)
            model[a] = job  # a dict keeps a key's first place: the order jobs were added
        elif op == "remove":
            assert isinstance(a, str)
            index.remove(a)
            model.pop(a, None)
        else:
            assert isinstance(a, float) and isinstance(b, tuple)
            exclude, limit = b
            assert index.due(a, exclude=exclude, limit=limit) == scanned(model, a, exclude, limit)
        assert len(index) == len(model)


def test_rewrites_do_not_grow_the_heap_without_bound_and_answers_stay_right() -> None:
    index = DueIndex(entry(job_id, 100.0) for job_id in IDS)
    for n in range(20_000):
        # Future times rewritten again and again: stale items no pass would drop on its own.
        index.put(entry(IDS[n % len(IDS)], 200.0 + n))
    model = {job_id: entry(job_id, 200.0 + 20_000 - len(IDS) + i) for i, job_id in enumerate(IDS)}
    assert len(index._later) <= 2 * len(IDS) + 1024 + 1
    assert index.due(1e9, exclude=(), limit=100) == scanned(model, 1e9, set(), 100)
    assert index.due(0.0, exclude=(), limit=100) == Agenda([], 200.0 + 20_000 - len(IDS))
