"""Prompt text as members type it, cleaned before anything judges or sends it.

Members (and anyone calling the API directly) can send characters that show nothing: zero-width
spaces, bidirectional overrides such as U+202E (which make text read backwards in the embed), and
control characters (NUL, BEL, ESC). They hide an empty prompt from the emptiness check, slip past the
blocked-term gate, reach the provider, and garble the embed. Cleaning happens once, when the request
is built, so the gate, the length checks, the provider and the embed all see the same text.
"""

from __future__ import annotations

import re
import unicodedata

# Whitespace controls that mean "a gap": kept as a space (newlines are kept as newlines).
_AS_SPACE = frozenset("\t\v\f\x1c\x1d\x1e\x1f\x85\u00a0")
_AS_NEWLINE = frozenset("\r\u2028\u2029")
# Other categories dropped: control, format (zero-width, bidi), surrogate halves (not encodable).
_DROPPED = frozenset({"Cc", "Cf", "Cs"})
ZERO_WIDTH_JOINER = "\u200d"


def clean_prompt(text: str) -> str:
    """NFC-normalise, drop invisible and control characters, and trim.

    A zero-width joiner between two emoji is kept (it builds sequences such as 👩‍🚀); everywhere else it
    is dropped with the other format characters. "\\r\\n" becomes "\\n".
    """
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n"))
    out: list[str] = []
    for index, char in enumerate(text):
        if char == "\n":
            out.append(char)
        elif char in _AS_NEWLINE:
            out.append("\n")
        elif char in _AS_SPACE:
            out.append(" ")
        elif char == ZERO_WIDTH_JOINER:
            if _joins_emoji(text, index, out):
                out.append(char)
        elif unicodedata.category(char) not in _DROPPED:
            out.append(char)
    return "".join(out).strip()


def _joins_emoji(text: str, index: int, out: list[str]) -> bool:
    before = out[-1] if out else ""
    after = text[index + 1] if index + 1 < len(text) else ""
    return _emoji_like(before) and _emoji_like(after)


def _emoji_like(char: str) -> bool:
    # Symbols (So) cover emoji; U+FE0F (a variation selector, Mn) often ends the first half.
    return bool(char) and (unicodedata.category(char) == "So" or char == "\ufe0f")


# Midjourney's way to ask for a shape, typed by members used to it: "a fox in the snow --ar 16:9" (also
# "--aspect"). Taken only at the very end, where Midjourney reads its parameters.
_RATIO_SUFFIX = re.compile(r"(?:^|\s)--(?:ar|aspect)\s+(\d{1,3}\s*:\s*\d{1,3}|auto)\s*$", re.IGNORECASE)


def ratio_suffix(text: str) -> tuple[str, str | None]:
    """``text`` without a trailing ``--ar W:H``, and that ratio ("16:9"); the text as it is and None
    without one. Whether the model offers the ratio is for the caller's checks to say."""
    match = _RATIO_SUFFIX.search(text)
    if match is None:
        return text, None
    return text[: match.start()].rstrip(), re.sub(r"\s", "", match[1]).lower()


# Midjourney's zoom out, typed the same way ("--zoom 2"; the bot's zoom out has no factor to take).
_ZOOM_SUFFIX = re.compile(r"(?:^|\s)--zoom(?:\s+\d(?:\.\d{1,2})?)?\s*$", re.IGNORECASE)


def frame_suffix(text: str) -> tuple[str, str | None, bool]:
    """``text`` without Midjourney's framing parameters at its end (``--ar W:H`` and ``--zoom [N]``, in
    either order), the ratio asked for and whether a zoom out was."""
    ratio: str | None = None
    zoom = False
    for _ in range(2):
        if not zoom and (match := _ZOOM_SUFFIX.search(text)):
            text, zoom = text[: match.start()].rstrip(), True
        elif ratio is None and (found := ratio_suffix(text))[1] is not None:
            text, ratio = found
    return text, ratio, zoom
