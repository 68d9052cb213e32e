"""cogs/prompt_form.py: the Change prompt form as Discord is sent it (discord.py's own payload)."""

from __future__ import annotations

from typing import Any

from bot.models import Derivation, GenerationRequest
from cogs.prompt_form import PromptForm
from cogs.reference_form import TEXT_INPUT_MAX_CHARS


def request(prompt: str, **fields: Any) -> GenerationRequest:
    return GenerationRequest(model="nano_banana_2", prompt=prompt, **fields)


def box(form: PromptForm) -> tuple[str, dict[str, Any]]:
    """The form's one labelled box: its description and its text input, as sent."""
    (label,) = form.to_dict()["components"]
    return str(label["description"]), dict(label["component"])


def test_the_form_holds_the_words_and_says_so_when_a_prompt_is_longer_than_a_box_holds() -> None:
    description, text = box(PromptForm("0123456789abcdef", request("a red fox")))
    assert text["value"] == "a red fox" and text["max_length"] == TEXT_INPUT_MAX_CHARS
    assert description.startswith("Made again with these words")
    # /imagine takes up to 6,000 characters; Discord's box holds 4,000: the start, and the member told.
    long = "a fox " * 1000
    description, text = box(PromptForm("0123456789abcdef", request(long)))
    assert text["value"] == long[:TEXT_INPUT_MAX_CHARS]
    assert description == "Only the first 4,000 characters of the prompt fit: the rest is left out."
    assert len(description) <= 100  # Discord's limit for a label's description


def test_under_an_image_made_from_another_the_form_says_what_is_taken_again() -> None:
    """Each kind's words and description (at most 100 characters: Discord's limit for a label's)."""
    made = {"job_id": "0123456789abcdef"}
    cases = {
        "vary_subtle": (request("Make a subtle variation...", subject="a kite"), "a kite", "varied again"),
        "edit": (request("make it night"), "make it night", "edited again"),
        "zoom_out": (request("Zoom out... Also: add a lake", member_words="add a lake"), "add a lake", "zoomed out"),
        "pan": (request("Extend this image...", member_words=""), "", "extended the same way"),
    }
    for action, (asked, words, said) in cases.items():
        derived = asked.model_copy(update={"derived_from": Derivation(action=action, **made)})  # type: ignore[arg-type]
        description, text = box(PromptForm("0123456789abcdef", derived))
        assert text.get("value", "") == words and said in description and len(description) <= 100, action
