"""A provider's out-of-order mark lapses (bot/catalogue.py Unhealthy), and the provider /imagine puts first
(``Catalogue.first_choice``, as cogs/policy.py admit chooses it)."""

from __future__ import annotations

from bot.catalogue import UNHEALTHY_RETRY_SECONDS, Catalogue
from bot.config import Settings, load_settings
from bot.models import GenerationRequest
from bot.preferences import Preferences, fill


class Hand:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def settings(*enabled: str) -> Settings:
    return load_settings(None, providers={name: {"enabled": True} for name in enabled})


def test_a_mark_lapses_and_the_provider_is_tried_in_turn_again() -> None:
    clock = Hand()
    cat = Catalogue(settings("seaart", "kie"), clock=clock)
    assert cat.route("nano_banana_2") == ["seaart", "kie"]
    cat.unhealthy.add("seaart")
    assert "seaart" in cat.unhealthy and cat.route("nano_banana_2") == ["kie", "seaart"]
    assert cat.unhealthy.retry_at("seaart") == clock.now + UNHEALTHY_RETRY_SECONDS
    clock.now += UNHEALTHY_RETRY_SECONDS - 1
    assert cat.route("nano_banana_2") == ["kie", "seaart"]
    clock.now += 1
    assert "seaart" not in cat.unhealthy and cat.route("nano_banana_2") == ["seaart", "kie"]
    # Lapsed, still remembered: the job it takes reports it working again (bot/job_submit.py).
    assert cat.unhealthy.marked("seaart")
    # A failure again marks it afresh.
    cat.unhealthy.add("seaart")
    assert cat.route("nano_banana_2") == ["kie", "seaart"]
    cat.unhealthy.discard("seaart")
    assert not cat.unhealthy.marked("seaart") and cat.unhealthy.retry_at("seaart") is None
    assert "kie" not in cat.unhealthy and not cat.unhealthy.marked("kie")


def test_a_preference_only_a_marked_provider_offers_comes_back_when_the_mark_lapses() -> None:
    """A saved png, which only Kie offers here, is left out while Kie is out of order (bot/preferences.py fill);
    before, it stayed left out until a restart, as nothing else sent a job to Kie to clear the mark."""
    clock = Hand()
    cat = Catalogue(settings("seaart", "kie"), clock=clock)
    request = GenerationRequest(model="nano_banana_2", prompt="a harbour")
    prefs = Preferences(output_format="png")
    assert fill(cat, request, prefs, given=()).output_format == "png"
    cat.unhealthy.add("kie")
    assert fill(cat, request, prefs, given=()).output_format is None
    clock.now += UNHEALTHY_RETRY_SECONDS
    assert fill(cat, request, prefs, given=()).output_format == "png"


def test_first_choice_passes_over_a_provider_not_serving_here_for_the_next() -> None:
    cat = Catalogue(settings("seaart", "kie"))
    assert cat.first_choice("nano_banana_2", "segmind", "kie") == "kie"  # segmind not enabled
    assert cat.first_choice("nano_banana_2", None, "kie") == "kie"
    assert cat.first_choice("nano_banana_2", "seaart", "kie") == "seaart"
    assert cat.first_choice("nano_banana_2", "segmind", None) is None
    assert cat.first_choice("nano_banana_3", "seaart", "kie") is None  # a model none serves


def test_a_mark_stamped_ahead_of_the_clock_counts_from_now() -> None:
    """A mark read back after a restart (bot/app.py) that was written while the clock ran a day ahead lasts ten
    minutes from now, not a day and ten minutes."""
    clock = Hand()
    cat = Catalogue(settings("seaart", "kie"), clock=clock)
    cat.unhealthy.add("kie", at=clock.now + 86_400)
    assert cat.unhealthy.retry_at("kie") == clock.now + UNHEALTHY_RETRY_SECONDS
    clock.now += UNHEALTHY_RETRY_SECONDS
    assert "kie" not in cat.unhealthy
    cat.unhealthy.add("kie", at=clock.now - 60)  # one from the past keeps what is left of it
    assert cat.unhealthy.retry_at("kie") == clock.now - 60 + UNHEALTHY_RETRY_SECONDS


def test_a_lapsed_mark_is_tried_in_turn_and_still_reported_working_when_it_takes_a_job() -> None:
    """A rejected key's mark, read back after a restart (bot/app.py): not holding the provider back, but
    remembered, so the first job it takes records it working again (bot/job_submit.py ``marked``)."""
    clock = Hand()
    cat = Catalogue(settings("seaart", "kie"), clock=clock)
    cat.unhealthy.add_lapsed("seaart")
    assert "seaart" not in cat.unhealthy and cat.route("nano_banana_2") == ["seaart", "kie"]
    assert cat.unhealthy.marked("seaart")
