"""The records a test reads: uploads, requests, messages, interactions and injected faults.

They are plain dataclasses; the fake mutates them in place (an edit changes the stored
:class:`FakeMessage`), so a test may keep a reference and look again later.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .protocol import FLAG_LOADING, JSON


@dataclass
class UploadedFile:
    """Bytes the client uploaded (or a test registered with :meth:`FakeDiscord.add_attachment`).

    ``content_type`` is what Discord would report: the part's declared type, except that discord.py
    always declares ``application/octet-stream``, so then the type is guessed from the filename.
    """

    filename: str
    content_type: str
    data: bytes


@dataclass
class RecordedRequest:
    """One HTTP request the fake received.

    ``path`` is relative to the API base for API routes (``/interactions/1/tok/callback``) and the full
    path otherwise (``/attachments/1/a.png``). ``json`` is the JSON body, or the parsed ``payload_json``
    part of a multipart body. ``status`` (an addition) is the status the fake answered with.
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any | None
    files: list[UploadedFile]
    at: float
    status: int = 0
    unknown_route: bool = False


@dataclass
class FakeMessage:
    """A message as the fake stores it. Mutated in place by edits, so tests can keep a reference."""

    id: int
    channel_id: int
    content: str | None
    embeds: list[JSON]
    components: list[JSON]
    attachments: list[JSON]
    files: list[UploadedFile]
    flags: int
    ephemeral: bool
    interaction_id: int | None
    allowed_mentions: JSON | None
    edits: int = 0
    deleted: bool = False
    # Additions: Discord message type (0 default, 20 chat-input command response), timestamps, tts.
    type: int = 0
    timestamp: str = ""
    edited_timestamp: str | None = None
    tts: bool = False
    # When the message first carried files (wall clock, time.time()), for delivery-latency benchmarks.
    files_at: float | None = None
    # Who wrote it: None for the bot (everything it sends); a member's id for a message a test posted as
    # that member (FakeDiscord.post_message).
    author_id: int | None = None
    # A reply's message_reference ({type, message_id, channel_id, guild_id}); None for other messages.
    reference: JSON | None = None
    # Users a reply pinged without naming them in the content: the replied-to message's author.
    pinged: list[int] = field(default_factory=list)
    # The reactions the bot added (PUT .../reactions/{emoji}/@me), each emoji once, in order.
    reactions: list[str] = field(default_factory=list)
    # Members' reactions (FakeDiscord.react), by emoji: who, in the order they reacted. Discord lists them on the
    # message (its ``reactions``, counted) and answers who reacted (GET .../reactions/{emoji}).
    reacted: dict[str, list[int]] = field(default_factory=dict)
    # Members' super reactions (Discord's burst reactions, listed apart: GET .../reactions/{emoji}?type=1).
    burst_reacted: dict[str, list[int]] = field(default_factory=dict)
    # A forward's copy of the message it forwards (Discord's message snapshot: type, content, embeds, attachments,
    # timestamps, flags as they were then); None for any other message.
    snapshot: JSON | None = None

    @property
    def loading(self) -> bool:
        """Whether this is still the "Bot is thinking..." placeholder of a deferred interaction."""
        return bool(self.flags & FLAG_LOADING)


@dataclass
class FakeInteraction:
    """An interaction the fake dispatched, and what the client did with it."""

    id: int
    token: str
    type: int
    user_id: int
    channel_id: int
    guild_id: int
    callbacks: list[JSON] = field(default_factory=list)
    original_message_id: int | None = None
    followup_ids: list[int] = field(default_factory=list)
    # Additions: the clicked message (component interactions), the payload dispatched, timings.
    message_id: int | None = None
    payload: JSON = field(default_factory=dict)
    created_at: float = 0.0
    acknowledged_at: float | None = None
    # Answers refused because they came after Discord's window (FakeDiscord.answer_window): the member saw
    # "This interaction failed" however right the answer was.
    late_answers: int = 0

    @property
    def acknowledged(self) -> bool:
        return bool(self.callbacks)

    @property
    def response_delay(self) -> float | None:
        """Seconds between dispatch and the (first accepted) callback; Discord's limit is 3 s."""
        return None if self.acknowledged_at is None else self.acknowledged_at - self.created_at


@dataclass(frozen=True)
class ChaosFault:
    """A fault :meth:`FakeDiscord.chaos` injected: when (time.monotonic(), like RecordedRequest.at),
    on which call, with which status; ``carried_out``: the call was done and only its answer replaced
    (:meth:`FakeDiscord.lose_answers`)."""

    at: float
    method: str
    path: str
    status: int
    carried_out: bool = False
