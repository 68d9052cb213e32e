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
# Discord's own ceiling for a string option, and so the longest prompt the bot sends for a member, however it
# was asked for (cogs/imagine.py build_request, start_job: a hand-made payload is not held to it by discord.py);
# each provider's lower limit is enforced by validate(). Not a bound of GenerationRequest: `bananacord generate`
# may send a provider's own longest (Kie takes 20,000), and a job stored before this check still loads.
PROMPT_MAX_CHARS = 6000
_AS_SPACE = frozenset("\t\v\f\x1c\x1d\x1e\x1f\x85\u00a0")
_AS_NEWLINE = frozenset("\r\u2028\u2029")
# Other categories dropped: control, format (zero-width, bidi), surrogate halves (not encodable).
_DROPPED = frozenset({"Cc", "Cf", "Cs"})
ZERO_WIDTH_JOINER = "\u200d"

# Invisible characters Unicode counts as letters (Default_Ignorable_Code_Point, category Lo): the Hangul
# fillers, typed to look like nothing (U+3164 is the usual "blank name"). bot/gate.py drops them before
# matching terms. A prompt keeps them beside visible text: U+115F and U+1160 stand for a missing consonant or
# vowel inside an old Hangul syllable, and one more letter the model reads changes nothing.
INVISIBLE_LETTERS = frozenset("\u115f\u1160\u3164\uffa0")
# Blank but visible to Unicode (category So): a braille cell with no dots, the space of braille text.
BRAILLE_BLANK = "\u2800"
# What a prompt's ends lose besides whitespace: blanks that stand alone (never part of a syllable or of the
# character before them, as U+115F/U+1160, variation selectors and the combining grapheme joiner are).
_BLANK_ENDS = re.compile(r"^[\s\u3164\uffa0\u2800]+|[\s\u3164\uffa0\u2800]+$")
# Default_Ignorable_Code_Point (Unicode's DerivedCoreProperties) beyond the format characters dropped anyway:
# the combining grapheme joiner, Khmer's inherent vowels, Mongolian and other variation selectors, the Hangul
# fillers, and the code points reserved as ignorable. Each shows nothing, yet is no category dropped above.
_IGNORABLE_RANGES = (
    (0x034F, 0x034F),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x2065, 0x2065),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0xE0000, 0xE0FFF),
)


def shows_nothing(char: str) -> bool:
    """Whether ``char`` is drawn as nothing at all: whitespace, a Hangul filler, a blank braille cell, a
    variation selector, the combining grapheme joiner, or another default-ignorable code point."""
    if char.isspace() or char == BRAILLE_BLANK:
        return True
    point = ord(char)
    return any(low <= point <= high for low, high in _IGNORABLE_RANGES)


def clean_prompt(text: str) -> str:
    """NFC-normalise, drop invisible and control characters, and trim.

    A zero-width joiner between two emoji is kept (it builds sequences such as 👩‍🚀); everywhere else it
    is dropped with the other format characters. "\\r\\n" becomes "\\n".

    Text that shows nothing at all (``shows_nothing``: Hangul fillers, blank braille cells, a variation
    selector or a combining grapheme joiner alone) is empty, refused as any empty prompt. Beside visible text
    those characters are kept, as they may mean something there (a variation selector makes ❤ the red
    emoji ❤️, a blank braille cell is the space between braille words); only the fillers and blank cells
    that stand alone are trimmed from the ends with the whitespace.
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
    # Again: a dropped character may have stood between two that compose ("e", U+200B, U+0301).
    cleaned = unicodedata.normalize("NFC", "".join(out))
    if all(shows_nothing(char) for char in cleaned):
        return ""
    return _BLANK_ENDS.sub("", cleaned)


def _joins_emoji(text: str, index: int, out: list[str]) -> bool:
    before = out[-1] if out else ""
    after = text[index + 1] if index + 1 < len(text) else ""
    return _emoji_like(before) and _emoji_like(after)


def _emoji_like(char: str) -> bool:
    # Symbols (So) cover emoji; U+FE0F (a variation selector, Mn) often ends the first half.
    return bool(char) and (unicodedata.category(char) == "So" or char == "\ufe0f")
