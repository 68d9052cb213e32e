"""bot/reference_roles.py: what the prompt sent says of the references given for their style, character or subject,
named by their places in the request being sent (a Vary's, an upscale's, an edit's places differ from the first)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot import derive
from bot.models import GenerationRequest, ReferenceImage, Turn
from bot.reference_roles import ordinal, roles_sentence, roles_shown, with_roles

PLAIN = ReferenceImage(url="https://cdn.example/a.png", content_type="image/png", size=0, filename="a.png")
STYLE = PLAIN.model_copy(update={"url": "https://cdn.example/style.png", "role": "style"})
FACE = PLAIN.model_copy(update={"url": "https://cdn.example/face.png", "role": "character"})
RESULT = PLAIN.model_copy(update={"url": "https://cdn.example/result.png"})


def test_the_sentence_names_each_role_by_its_place() -> None:
    assert roles_sentence([None, None]) is None
    assert roles_sentence(["style"]) == (
        "Take only the style of the image: its colours, light, medium and texture, not what it shows."
    )
    assert roles_sentence([None, "style"]) == (
        "Take only the style of the second image: its colours, light, medium and texture, not what it shows."
    )
    assert roles_sentence(["style", None, "style", "character"]) == (
        "Take only the style of the first and third images: their colours, light, medium and texture, not what they "
        "show. Draw the same character as in the fourth image, with the same face, hair and clothes."
    )
    assert roles_sentence(["subject", "style", "character"]) == (
        "Take only the style of the second image: its colours, light, medium and texture, not what it shows. "
        "Draw the same character as in the third image, with the same face, hair and clothes. "
        "Include the subject of the first image, as it looks there."
    )
    assert ordinal(14) == "fourteenth" and ordinal(17) == "17th"


def test_the_words_come_first_and_end_their_sentence() -> None:
    assert with_roles("a fox", [None]) == "a fox"
    assert with_roles("a fox at dawn", ["style"]).startswith("a fox at dawn. Take only the style of the image")
    assert with_roles("a fox!", ["style"]).startswith("a fox! Take")
    assert with_roles("", ["character"]).startswith("Draw the same character")
    # /blend with a style and no words of the member's: its instruction, then the sentence, no ":." between.
    assert with_roles("Blend these images into one:", [None, None, "style"]).startswith(
        "Blend these images into one. Take only the style of the third image"
    )
    assert with_roles("a fox,", ["style"]).startswith("a fox. Take")


def test_the_request_sends_the_sentence_for_the_places_it_has() -> None:
    """Typed as ``a fox --sref <link>`` beside an attached image, then varied (the result first), upscaled (the
    result alone) and used in a conversation's turn: each sends what its own references are for."""
    request = GenerationRequest(model="nano_banana_pro", prompt="a fox", reference_images=(PLAIN, STYLE))
    assert request.sent_prompt == (
        "a fox. Take only the style of the second image: its colours, light, medium and texture, not what it shows."
    )
    assert request.judged_words == "a fox"  # moderation judges the member's words, not the bot's sentence
    varied = derive.vary(request, RESULT, ("job", None), limit=14)
    assert [ref.url for ref in varied.reference_images] == [RESULT.url, PLAIN.url, STYLE.url]
    assert "Take only the style of the third image" in varied.sent_prompt
    # Held to a provider taking two, the style image is cut off, and so is what the prompt said of it.
    assert "Take only" not in derive.vary(request, RESULT, ("job", None), limit=2).sent_prompt
    upscaled = derive.upscale(request, RESULT, "4K", ("job", None))
    assert upscaled.sent_prompt == upscaled.prompt == "a fox"
    turn = Turn(prompt="a fox", reference_images=(FACE,), result=RESULT)
    assert turn.sent_prompt.startswith("a fox. Draw the same character as in the image,")


def test_the_message_counts_the_references_given_for_each_role() -> None:
    assert roles_shown([None]) is None
    assert roles_shown([None, "style", "character", "style"]) == "2 for style, 1 for its character"
    assert roles_shown(["style", "character", "style"], [300, 0]) == (
        "1 for style, 1 for style at --sw 300, 1 for its character at --cw 0"
    )


@pytest.mark.parametrize(
    ("role", "weight", "asked"),
    [
        ("style", 0, "Take only a light touch of the style of the image: a hint of its colours,"),
        ("style", 50, "Take only a light touch of the style of the image"),
        ("style", 51, "Take only the style of the image: its colours,"),
        ("style", 199, "Take only the style of the image: its colours,"),
        ("style", 200, "Follow the style of the image closely: its colours,"),
        ("character", 0, "Draw the same character as in the image, keeping only the face: the hair and clothes"),
        ("character", 33, "keeping only the face"),
        ("character", 34, "keeping the face and hair: the clothes need not match."),
        ("character", 67, "Draw the same character as in the image, with the same face, hair and clothes."),
        ("subject", 1, "Include a subject like the one in the image, loosely: its details may differ."),
        ("subject", 100, "Include the subject of the image, as it looks there."),
        ("subject", 1000, "Include the subject of the image exactly as it looks there, every detail kept."),
    ],
)
def test_a_weight_says_how_much_of_its_role_to_take(role: str, weight: int, asked: str) -> None:
    """Midjourney's --sw, --cw and --ow in words: a light or close style, only the face (``--cw 0``, Midjourney's
    "face only"), a loose or exact subject; Midjourney's default (100) as without a weight."""
    assert asked in (roles_sentence([role], [weight]) or "")


def test_a_weight_goes_with_its_image_through_a_vary() -> None:
    weighed = STYLE.model_copy(update={"weight": 400})
    request = GenerationRequest(model="nano_banana_pro", prompt="a fox", reference_images=(PLAIN, weighed, FACE))
    assert request.sent_prompt == (
        "a fox. Follow the style of the second image closely: its colours, light, medium and texture, not what it "
        "shows. Draw the same character as in the third image, with the same face, hair and clothes."
    )
    varied = derive.vary(request, RESULT, ("job", None), limit=14)
    assert "Follow the style of the third image closely" in varied.sent_prompt
    # Stored and read back as the job's row is: the weight kept.
    assert GenerationRequest.model_validate_json(request.model_dump_json()) == request


@given(
    st.lists(
        st.tuples(st.sampled_from([None, "style", "character", "subject"]), st.none() | st.integers(0, 1000)),
        min_size=1,
        max_size=14,
    )
)
def test_every_image_given_a_role_is_named_once_and_no_other(given_roles: list[tuple[str | None, int | None]]) -> None:
    roles = [role for role, _ in given_roles]
    sentence = roles_sentence(roles, [weight for _, weight in given_roles]) or ""
    for place, role in enumerate(roles, start=1):
        named = len(roles) > 1 and f" {ordinal(place)} " in sentence.replace(",", " ").replace("the ", " the ")
        assert named == (role is not None and len(roles) > 1), (roles, sentence)
    assert (sentence == "") == all(role is None for role in roles)
