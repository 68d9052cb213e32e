"""bot/regions.py and its use in bot/derive.py: an edit of one part of an image (Midjourney's Vary (Region), by area)
sends the member's words and which part alone may change; the words stay theirs, and the area goes with the request
through a Change prompt."""

from __future__ import annotations

from bot import derive, render
from bot.models import GenerationRequest, ReferenceImage
from bot.regions import in_region

IMAGE = ReferenceImage(url="https://cdn.example/result.png", content_type="image/png", size=0, filename="result.png")
HAT = IMAGE.model_copy(update={"url": "https://cdn.example/hat.png"})
BASE = GenerationRequest(model="nano_banana_pro", prompt="a knight in a courtyard", aspect_ratio="16:9")


def test_the_prompt_names_the_part_and_keeps_the_rest() -> None:
    assert in_region("a red hat", "top-left") == (
        "a red hat. Change only the top-left quarter of this image, and keep everything else in it exactly as it is."
    )
    assert in_region("make it snow!", "bottom", references=2).startswith(
        "make it snow! Change only the bottom half of the first image,"
    )


def test_an_edit_of_a_region_keeps_the_words_the_members_and_the_area_through_a_change_prompt() -> None:
    edited = derive.edit(BASE, IMAGE, "a red hat", ("job1", None), region="centre", more=(HAT,))
    assert edited.prompt == (
        "a red hat. Change only the centre of the first image, and keep everything else in it exactly as it is."
    )
    assert edited.judged_words == "a red hat"  # moderation judges the member's words, not the bot's sentence
    assert edited.derived_from is not None and edited.derived_from.region == "centre"
    assert edited.aspect_ratio == "16:9" and edited.reference_images == (IMAGE, HAT)
    assert render.request_words(edited) == (None, "a red hat")
    # Change prompt holds the words alone, and asks for the same area with the new ones.
    assert derive.words_to_change(edited) == "a red hat"
    again = derive.reworded(edited, "a blue scarf")
    assert again is not None and again.prompt.startswith("a blue scarf. Change only the centre of the first image")
    assert again.judged_words == "a blue scarf" and again.derived_from == edited.derived_from
    # A Vary or a re-render of the edited image draws what it shows, not the area's sentence again.
    assert "Change only" not in derive.upscale(edited, IMAGE, "2K", ("job2", None)).prompt
    assert "Change only" not in derive.vary(edited, IMAGE, ("job2", None), limit=14).prompt
    # Stored and read back as the job's row is: the area kept.
    assert GenerationRequest.model_validate_json(edited.model_dump_json()) == edited


def test_an_edit_anywhere_is_as_it_was() -> None:
    edited = derive.edit(BASE, IMAGE, "a red hat", ("job1", None))
    assert edited.prompt == "a red hat" and edited.member_words is None
    assert edited.derived_from is not None and edited.derived_from.region is None
