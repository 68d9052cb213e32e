"""A server's own limits, set by its admins with ``/quota server`` (cogs/quota.py) over the bot's configured ones.

Three limits bound a whole server: the images its members may have generating at once (``[quotas]
in_flight_per_guild``), the units they may use in a quota month (``guild_monthly_units``) and the estimated dollars
(``guild_monthly_budget_usd``). The config gives every server the same; a bot in several servers needs each its own
(a busy server's room, a small one's budget), set from Discord without a restart.

A server's own are its row of ``quota_limits`` (scope 'guild', the server itself its target;
bot/store/migrations/0003_quotas.sql): a limit left NULL there is the config's, NO_LIMIT lifts it to none whatever
the config says, any other value is the server's. bot/quotas.py reads the result at every request and at every
waiting request's look for room (bot/waiting_requests.py).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from decimal import ROUND_HALF_UP, Decimal

from bot.config import QuotaSettings

NO_LIMIT = -1
"""A stored limit that lifts its holder to no limit there: a member override's (``/quota set member: no_limit:``)
or a server's own (``/quota server no_limit:``). NULL already means "not set here: as the tiers, the defaults or
the config give it", so "no limit" needs a value of its own; limits are never negative otherwise."""

# The limits by the names /quota server's options give them, each with how it reads.
NAMES = ("in_flight", "monthly_units", "budget")
_WORDS = {
    "in_flight": ("{} image(s) generating at once", "no limit on images generating at once"),
    "monthly_units": ("{} units a month", "no monthly unit limit"),
    "budget": ("{} a month", "no monthly budget"),
}


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """A server's limits; None: none. As stored (``ServerLimits`` of the server's own row): None is "the config's",
    NO_LIMIT "none". The budget in micro-dollars, as the ledger's costs."""

    in_flight: int | None = None
    monthly_units: int | None = None
    budget: int | None = None

    def named(self) -> dict[str, int | None]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def over(self, config: ServerLimits) -> ServerLimits:
        """These (a server's own, as stored) in force over ``config``: each set one is the server's, NO_LIMIT none."""
        own, base = self.named(), config.named()
        return ServerLimits(
            **{
                name: base[name] if own[name] is None else None if own[name] == NO_LIMIT else own[name]
                for name in NAMES
            }
        )

    def changed(self, given: dict[str, int | None], back: set[str]) -> ServerLimits | None:
        """These (stored) with the limits ``given`` set and those in ``back`` returned to the config's; None when
        nothing of the server's own is left (its row goes)."""
        merged = replace(self, **{name: value for name, value in given.items() if value is not None})
        merged = replace(merged, **dict.fromkeys(back))
        return None if all(value is None for value in merged.named().values()) else merged


NONE_OWN = ServerLimits()


def configured(settings: QuotaSettings) -> ServerLimits:
    """The limits the config gives every server."""
    budget = settings.guild_monthly_budget_usd
    return ServerLimits(
        settings.in_flight_per_guild,
        settings.guild_monthly_units,
        None if budget is None else int(budget * 1_000_000),
    )


def usd(micro: int) -> str:
    return f"${Decimal(micro) / 1_000_000:.2f}"


def cents(dollars: float) -> int:
    """A budget given in dollars (a Discord number: a float) in micro-dollars, to the cent, as it is shown."""
    whole_cents = (Decimal(str(dollars)) * 100).to_integral_value(rounding=ROUND_HALF_UP)
    return int(whole_cents) * 10_000


def limit_words(name: str, value: int | None) -> str:
    """One limit as an admin reads it: "3 image(s) generating at once", "$50.00 a month", "no monthly budget"."""
    some, none = _WORDS[name]
    if value is None or value == NO_LIMIT:
        return none
    return some.format(usd(value) if name == "budget" else f"{value:,}")


def stored_words(own: ServerLimits | None) -> str:
    """A server's own limits as stored, for the audit trail: only those it sets ("none": the config's, all)."""
    if own is None:
        return "none (the bot's configured limits)"
    named = [limit_words(name, value) for name, value in own.named().items() if value is not None]
    return ", ".join(named)


@dataclass(frozen=True, slots=True)
class ServerStatus:
    """A server's limits and what of each is in use this quota month (``/quota server``)."""

    own: ServerLimits | None
    config: ServerLimits
    # Units and micro-dollars reserved this quota month, less refunds (delivered, or held by images generating).
    used_units: int
    spent: int
    # Images generating now, and waiting for the server's room (bot/waiting_requests.py).
    generating: int
    waiting: int
    resets_at: float
    # False while [quotas] enabled = false: nothing is limited, whatever is set.
    enforced: bool

    @property
    def limits(self) -> ServerLimits:
        return (self.own or NONE_OWN).over(self.config)
