"""A server's own limits over the bot's configured ones (bot/server_limits.py): which applies, how a change merges
with what the server had, and a budget in dollars as it is stored."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from bot.config import QuotaSettings
from bot.server_limits import NO_LIMIT, ServerLimits, cents, configured, limit_words, stored_words, usd


def test_the_servers_own_limit_applies_no_limit_lifts_and_one_left_out_is_the_configs() -> None:
    config = configured(QuotaSettings(in_flight_per_guild=10, guild_monthly_units=500, guild_monthly_budget_usd=None))
    assert config == ServerLimits(10, 500, None)
    own = ServerLimits(in_flight=2, monthly_units=NO_LIMIT, budget=None)
    assert own.over(config) == ServerLimits(in_flight=2, monthly_units=None, budget=None)
    assert ServerLimits().over(config) == config


def test_a_change_keeps_the_limits_it_does_not_name_and_clearing_all_leaves_nothing() -> None:
    had = ServerLimits(in_flight=3, monthly_units=None, budget=50_000_000)
    assert had.changed({"in_flight": None, "monthly_units": 9, "budget": None}, set()) == ServerLimits(3, 9, 50_000_000)
    assert had.changed({"in_flight": NO_LIMIT, "monthly_units": None, "budget": None}, {"budget"}) == ServerLimits(
        NO_LIMIT, None, None
    )
    assert had.changed(dict.fromkeys(("in_flight", "monthly_units", "budget")), {"in_flight", "budget"}) is None


def test_the_words_say_each_limit_and_the_configs_for_one_not_set() -> None:
    assert limit_words("budget", 12_340_000) == "$12.34 a month"
    assert limit_words("monthly_units", 5000) == "5,000 units a month"
    assert limit_words("in_flight", NO_LIMIT) == "no limit on images generating at once"
    assert stored_words(None) == "none (the bot's configured limits)"
    assert stored_words(ServerLimits(in_flight=0, budget=0)) == "0 image(s) generating at once, $0.00 a month"


@given(st.decimals(min_value=0, max_value=1_000_000_000, places=2))
def test_a_budget_to_the_cent_is_stored_as_given(dollars: Decimal) -> None:
    """A Discord number is a float: 0.07 arrives as 0.07000000000000001, and is stored as 7 cents."""
    assert cents(float(dollars)) == int(dollars * 1_000_000)
    assert usd(cents(float(dollars))) == f"${dollars:.2f}"
