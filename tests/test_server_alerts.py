"""Which reservations tell a server's moderators that its month is mostly used or spent (bot/server_alerts.py)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bot.server_alerts import MOST, crossed

BOUNDS = (1_000.0, 2_000.0)


def levels(**kwargs: int | None) -> list[str]:
    return [alert.level for alert in crossed(1, BOUNDS, "budget", **kwargs)]  # type: ignore[arg-type]


def test_past_most_of_the_limit_and_where_one_more_no_longer_fits() -> None:
    # $0.04 images under a $1.00 budget (micro-dollars): the 20th takes it to 80%, the 25th spends it.
    assert levels(before=760_000, after=800_000, limit=1_000_000, each=40_000) == ["most"]
    assert levels(before=800_000, after=840_000, limit=1_000_000, each=40_000) == []
    assert levels(before=960_000, after=1_000_000, limit=1_000_000, each=40_000) == ["spent"]
    # A batch of four from 70% to 100% crosses both at once.
    assert levels(before=700_000, after=860_000, limit=1_000_000, each=40_000) == ["most"]
    assert levels(before=700_000, after=990_000, limit=1_000_000, each=40_000) == ["most", "spent"]
    # No limit, or one of 0 (set by an admin: nothing ever fitted), tells nothing; nor does a free image.
    assert levels(before=0, after=40_000, limit=None, each=40_000) == []
    assert levels(before=0, after=0, limit=0, each=40_000) == []
    assert levels(before=990_000, after=990_000, limit=1_000_000, each=0) == []


def test_the_words_say_how_much_of_what_and_how_to_raise_it() -> None:
    (most,) = crossed(7, BOUNDS, "budget", before=39_000_000, after=40_120_000, limit=50_000_000, each=120_000)
    assert most.words() == (
        "This server has used $40.12 of its $50.00 this month (80%). It resets <t:2000:R>; an admin may raise it "
        "with `/quota server budget_usd:`."
    )


@given(st.integers(1, 500), st.integers(1, 20), st.lists(st.integers(1, 4), min_size=1, max_size=200))
def test_each_is_crossed_by_exactly_one_reservation_of_those_that_fit(limit: int, each: int, counts: list[int]) -> None:
    """Reservations one after another, each as many images as fit: "most" is told by exactly one of them once the
    use reaches 80%, "spent" by exactly one once no image more fits, and none before."""
    used, told = 0, []
    for count in counts:
        count = min(count, (limit - used) // each)
        if count == 0:
            break
        before, used = used, used + count * each
        told += levels(before=before, after=used, limit=limit, each=each)
    assert told.count("most") == (1 if used >= MOST * limit else 0)
    assert told.count("spent") == (1 if used and limit - used < each else 0)  # none fitted at all: nothing to tell
