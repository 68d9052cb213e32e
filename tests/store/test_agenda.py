"""The agenda's heap answers what a full scan of every entry would, at the cost of the due ones."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.models import JobState
from bot.store.agenda import Agenda, AgendaIndex, DueJob, Shelf, due_order, shelf_of


def entry(job_id: str, at: float | None, shelf: Shelf = ("seaart", JobState.RUNNING)) -> DueJob:
    provider, state = shelf
    return DueJob(job_id, state, provider, None, at, None, None)


def scan(entries: dict[str, DueJob], now: float, exclude: set[str], limit: int, skip: set[Shelf]) -> Agenda:
    """The agenda as it was computed before the heaps: every entry looked at."""
    looked_at = [e for e in entries.values() if shelf_of(e) not in skip]
    due = sorted((e for e in looked_at if due_order(e) <= now and e.id not in exclude), key=due_order)
    later = [due_order(e) for e in looked_at if due_order(e) > now]
    return Agenda(due[:limit], now if len(due) > limit else min(later, default=None))


IDS = st.sampled_from([f"j{i}" for i in range(12)])
TIMES = st.one_of(st.none(), st.integers(0, 20).map(float))
SHELVES = st.sampled_from(
    [(provider, state) for provider in ("seaart", "kie") for state in (JobState.RUNNING, JobState.SUCCEEDED)]
)
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("put"), IDS, st.tuples(TIMES, SHELVES)),
        st.tuples(st.just("discard"), IDS, st.none()),
        st.tuples(
            st.just("agenda"),
            st.frozensets(IDS, max_size=4),
            st.tuples(st.integers(0, 20), st.integers(1, 5), st.frozensets(SHELVES, max_size=2)),
        ),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(OPS)
def test_the_heaps_agree_with_a_scan_of_every_entry(ops: list[tuple[object, object, object]]) -> None:
    index, model = AgendaIndex(), {}
    clock = 0.0  # the loop's passes come in time order
    for op, a, b in ops:
        if op == "put":
            assert isinstance(a, str) and isinstance(b, tuple)
            at, shelf = b
            index.put(entry(a, at, shelf))
            model[a] = entry(a, at, shelf)
        elif op == "discard":
            assert isinstance(a, str)
            index.discard(a)
            model.pop(a, None)
        else:
            assert isinstance(a, frozenset) and isinstance(b, tuple)
            now = clock = max(clock, float(b[0]))
            limit, skip = b[1], set(b[2])
            got = index.agenda(now, exclude=a, limit=limit, skip=skip)
            want = scan(model, now, set(a), limit, skip)
            # Ties in time may come in either order; the times, the set of jobs and next_at may not differ.
            assert [due_order(e) for e in got.due] == [due_order(e) for e in want.due]
            candidates = {
                e for e in model.values() if due_order(e) <= now and e.id not in a and shelf_of(e) not in skip
            }
            assert set(got.due) <= candidates and len({e.id for e in got.due}) == len(got.due)
            assert got.next_at == want.next_at
    assert len(index) == len(model) and sorted(e.id for e in index.values()) == sorted(model)


def test_replaced_entries_do_not_pile_up() -> None:
    index = AgendaIndex()
    for poll in range(10_000):  # ten jobs polled a thousand times each, always due later
        index.put(entry(f"j{poll % 10}", 1000.0 + poll))
    assert len(index) == 10
    assert index.slots <= 2 * 10 + 64 + 1
    assert [e.id for e in index.agenda(1e9, exclude=(), limit=20).due] == [f"j{i}" for i in range(10)]


def test_a_rebuild_while_a_job_is_in_flight_lists_it_once() -> None:
    index = AgendaIndex([entry("busy", 1.0)])
    assert index.agenda(5.0, exclude={"busy"}, limit=10).due == []  # its step is running: set aside
    for poll in range(200):  # other jobs' polls pile up leftovers until the heap is rebuilt
        index.put(entry(f"j{poll % 3}", 100.0 + poll))
    assert [e.id for e in index.agenda(5.0, exclude=(), limit=10).due] == ["busy"]


def test_a_full_lanes_overdue_jobs_do_not_hide_the_others() -> None:
    """Three hundred SeaArt polls overdue (their provider hangs, its lane full) and one Kie poll due: in
    one heap the SeaArt ones filled every pass's window, so the Kie job was never looked at."""
    index = AgendaIndex([entry(f"s{i}", 1.0) for i in range(300)] + [entry("k", 5.0, ("kie", JobState.RUNNING))])
    crowded = index.agenda(10.0, exclude=(), limit=256)
    assert len(crowded.due) == 256 and "k" not in {e.id for e in crowded.due}
    agenda = index.agenda(10.0, exclude=(), limit=256, skip={("seaart", JobState.RUNNING)})
    assert [e.id for e in agenda.due] == ["k"] and agenda.next_at is None
