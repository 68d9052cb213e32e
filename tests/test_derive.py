"""Requests that work on a delivered image (bot/derive.py), and when a Discord link needs renewing
(bot/discord_refs.py); the flows through Discord are in tests/e2e/test_rework.py."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from bot import derive
from bot.catalogue import Catalogue
from bot.config import load_settings
from bot.discord_refs import REFRESH_MARGIN_SECONDS, expires_at, stale
from bot.models import GenerationRequest, ReferenceImage, Turn
from bot.providers.families import NANO_BANANA_2, NANO_BANANA_PRO

NOW = 1_800_000_000.0


def image(name: str) -> ReferenceImage:
    return ReferenceImage(url=f"https://cdn.example/{name}.png", content_type="image/png", size=10, filename=name)


def catalogue(**providers: Any) -> Catalogue:
    return Catalogue(load_settings(None, providers=providers or {"seaart": {"enabled": True}}))


def request(**fields: Any) -> GenerationRequest:
    return GenerationRequest(**{"model": "nano_banana_2", "prompt": "a lighthouse", **fields})


def test_vary_puts_the_image_first_keeps_the_members_references_and_drops_earlier_images() -> None:
    first = request(reference_images=(image("a"), image("b")), aspect_ratio="3:2", seed=7)
    varied = derive.vary(first, image("shown"), ("job1", "https://discord.com/channels/1/2/3"), limit=14)
    assert [r.filename for r in varied.reference_images] == ["shown", "a", "b"]
    assert varied.prompt == derive.varied("a lighthouse", "vary", references=3) and varied.aspect_ratio == "3:2"
    assert varied.subject == "a lighthouse"
    assert varied.seed is not None and varied.seed != 7
    assert varied.derived_from is not None and varied.derived_from.action == "vary"
    # A variation of a variation starts from the newer image, not from both, and words it from the same prompt.
    again = derive.vary(varied, image("newer"), ("job2", None), limit=14, strength="vary_subtle")
    assert [r.filename for r in again.reference_images] == ["newer", "a", "b"]
    assert again.prompt == derive.varied("a lighthouse", "vary_subtle", references=3)
    assert again.derived_from is not None and again.derived_from.action == "vary_subtle"
    assert [r.filename for r in derive.vary(first, image("shown"), ("job1", None), limit=2).reference_images] == [
        "shown",
        "a",
    ]


def test_a_variation_of_a_prompt_with_no_room_for_the_instruction_sends_the_prompt_alone() -> None:
    long = request(prompt="a lighthouse " * 190)  # 2,470 characters: SeaArt takes 2,500
    assert derive.prompt_limit(catalogue(), "nano_banana_2") == 2500
    plain = derive.vary(long, image("shown"), ("job1", None), limit=3, max_chars=2500, strength="vary_subtle")
    assert plain.prompt == long.prompt and plain.subject == long.prompt
    assert plain.derived_from is not None and plain.derived_from.action == "vary_subtle"
    roomy = derive.vary(long, image("shown"), ("job1", None), limit=3, max_chars=20_000, strength="vary_subtle")
    assert roomy.prompt == derive.varied(long.prompt, "vary_subtle")
    assert derive.prompt_limit(catalogue(seaart={"enabled": False}), "nano_banana_2") == 0


def test_a_variation_of_a_reply_starts_afresh_from_its_image() -> None:
    # A reply job: its first reference is the image replied to, its history the conversation before.
    turn = Turn(prompt="a cat", reference_images=(), result=image("replied"))
    reply = request(prompt="now at night", reference_images=(image("replied"), image("hat")), history=(turn,))
    varied = derive.vary(reply, image("shown"), ("job3", None), limit=14)
    assert [r.filename for r in varied.reference_images] == ["shown", "hat"]
    assert varied.history == () and varied.prompt.endswith("It was made from this prompt: now at night")


def test_edit_and_rerender_send_the_image_alone_and_keep_the_options() -> None:
    first = request(reference_images=(image("a"),), resolution="2K", output_format="png", seed=3)
    edited = derive.edit(first, image("shown"), "  make it night\u200b ", ("job1", None))
    assert edited.prompt == "make it night" and [r.filename for r in edited.reference_images] == ["shown"]
    assert (edited.resolution, edited.output_format, edited.seed) == ("2K", "png", 3)
    rendered = derive.upscale(first, image("shown"), "4K", ("job1", None))
    assert rendered.resolution == "4K" and rendered.prompt == first.prompt and len(rendered.reference_images) == 1
    assert rendered.derived_from is not None and rendered.derived_from.action == "upscale"


def test_rerender_sizes_are_those_above_the_image_that_a_provider_serves() -> None:
    seaart = catalogue()
    assert derive.upscale_sizes(seaart, "nano_banana_2", "512") == ("2K", "4K")
    assert derive.upscale_sizes(seaart, "nano_banana_2", "1K") == ("2K", "4K")
    assert derive.upscale_sizes(seaart, "nano_banana_pro", "2K") == ("4K",)
    assert derive.upscale_sizes(seaart, "nano_banana_2", "4K") == ()
    lite = catalogue(
        seaart={"enabled": False},
        gemini={"enabled": True, "model_ids": {"nano_banana_2": "gemini-3.1-flash-lite-image"}},
    )
    assert derive.upscale_sizes(lite, "nano_banana_2", "1K") == ()
    assert derive.upscale_sizes(lite, "nano_banana_pro", "1K") == ("2K", "4K")
    assert derive.reference_limit(seaart, "nano_banana_2") == 3 and derive.reference_limit(lite, "nano_banana_2") == 14


def test_the_shapes_offered_are_the_models_own_without_auto() -> None:
    kie = catalogue(seaart={"enabled": False}, kie={"enabled": True})
    assert "auto" in kie.capabilities("kie", "nano_banana_2").aspect_ratios  # kie.ai takes "auto"...
    assert derive.shapes(kie, "nano_banana_2") == NANO_BANANA_2.aspect_ratios  # ...a new shape is a ratio
    assert derive.shapes(catalogue(), "nano_banana_pro") == NANO_BANANA_PRO.aspect_ratios
    # Nothing serves the model: nothing to offer (the form then has no shape choice).
    assert derive.shapes(catalogue(seaart={"enabled": False}, sinancode={"enabled": True}), "nano_banana_pro") == ()
    assert [derive.shape_name(r) for r in ("16:9", "1:1", "1:8", "auto")] == [
        "16:9 (landscape)",
        "1:1 (square)",
        "1:8 (portrait)",
        "auto",
    ]


def test_a_new_frame_alone_reframes_or_zooms_out_and_with_words_edits_in_it() -> None:
    first = request(aspect_ratio="1:1", resolution="2K", seed=3)
    reframed = derive.edit(first, image("shown"), "", ("job1", None), frame=derive.Frame(ratio="21:9"))
    assert reframed.aspect_ratio == "21:9" and reframed.resolution == "2K"
    assert reframed.prompt.startswith("Show this same image in a 21:9 (landscape) frame")
    assert [r.filename for r in reframed.reference_images] == ["shown"]
    assert reframed.derived_from is not None and reframed.derived_from.action == "reframe"
    both = derive.edit(first, image("shown"), "at dusk", ("job1", None), frame=derive.Frame(ratio="9:16"))
    assert (both.prompt, both.aspect_ratio, both.derived_from and both.derived_from.action) == (
        "at dusk",
        "9:16",
        "edit",
    )
    kept = derive.edit(first, image("shown"), "at dusk", ("job1", None))
    assert kept.aspect_ratio == "1:1" and kept.derived_from is not None and kept.derived_from.action == "edit"

    zoomed = derive.edit(first, image("shown"), "", ("job1", None), frame=derive.Frame(zoom_out=True))
    assert zoomed.aspect_ratio == "1:1" and zoomed.prompt.startswith("Zoom out from this image into the same frame")
    assert zoomed.derived_from is not None and zoomed.derived_from.action == "zoom_out"
    wider = derive.edit(
        first, image("shown"), "add a moon", ("j", None), frame=derive.Frame(ratio="16:9", zoom_out=True)
    )
    assert wider.aspect_ratio == "16:9" and wider.prompt.startswith("Zoom out from this image into a 16:9 (landscape)")
    assert wider.prompt.endswith(" Also: add a moon")


def test_a_pan_takes_the_shape_nearest_half_as_wide_or_tall_again() -> None:
    nb2, pro = NANO_BANANA_2.aspect_ratios, NANO_BANANA_PRO.aspect_ratios
    assert derive.pan_ratio(1.0, "right", nb2) == derive.pan_ratio(1.0, "left", nb2) == "3:2"
    assert derive.pan_ratio(1.0, "up", nb2) == derive.pan_ratio(1.0, "down", nb2) == "2:3"
    assert derive.pan_ratio(16 / 9, "right", pro) == "21:9"
    assert derive.pan_ratio(21 / 9, "right", pro) is None  # nothing wider on Pro
    assert derive.pan_ratio(21 / 9, "right", nb2) == "4:1"
    assert derive.pan_ratio(1 / 8, "down", nb2) is None and derive.pan_ratio(8.0, "right", nb2) is None
    frame = derive.Frame(ratio="3:2", pan="left")
    prompt, action = derive.framed("", frame)
    assert action == "pan" and prompt.startswith("Extend this image towards the left into a 3:2 (landscape) frame")
    assert "as it is at the right of the new frame" in prompt
    assert derive.framed("add a dog", derive.Frame(ratio="2:3", pan="down"))[0].endswith("Also: add a dog")


@given(st.floats(min_value=0.1, max_value=10), st.sampled_from(derive.PANS))
def test_a_pan_always_makes_room_the_way_it_goes(current: float, pan: derive.Pan) -> None:
    ratio = derive.pan_ratio(current, pan, NANO_BANANA_2.aspect_ratios)
    value = derive.proportion(ratio)
    if value is not None:
        assert value >= current * 1.15 if pan in ("left", "right") else value <= current / 1.15


def test_an_images_own_shape_is_the_one_asked_or_the_one_its_size_matches() -> None:
    nb2 = NANO_BANANA_2.aspect_ratios
    assert derive.own_shape("16:9", None, nb2) == "16:9"
    assert derive.own_shape(None, 1024 / 576, nb2) == "16:9"
    assert derive.own_shape("auto", 1200 / 896, nb2) == "4:3"  # 1.339: within 2% of 4:3
    assert derive.own_shape(None, 1.25, nb2) == "5:4" and derive.own_shape(None, 1.2, nb2) is None
    assert derive.own_shape(None, None, nb2) is None and derive.proportion("auto") is None


def test_a_vary_or_rerender_of_a_framed_image_draws_its_subject_not_the_frame_again() -> None:
    first = request(prompt="a cabin in the woods", aspect_ratio="3:2")
    zoomed = derive.edit(first, image("made"), "", ("job1", None), frame=derive.Frame(zoom_out=True))
    assert zoomed.prompt.startswith("Zoom out") and zoomed.subject == "a cabin in the woods"
    # Zoomed out again, then panned: the words for what the image shows go along.
    panned = derive.edit(zoomed, image("z"), "", ("job2", None), frame=derive.Frame(ratio="21:9", pan="right"))
    assert panned.subject == "a cabin in the woods"
    for derived in (
        derive.upscale(panned, image("p"), "2K", ("job3", None)),
        derive.vary(panned, image("p"), ("job3", None), limit=14),
    ):
        assert derived.prompt.endswith("a cabin in the woods") and "Zoom" not in derived.prompt
        assert "Extend" not in derived.prompt and derived.aspect_ratio == "21:9"  # the frame is in the image now
    assert derive.upscale(panned, image("p"), "2K", ("job3", None)).subject is None
    # An edit in words is about what the image shows: it needs no subject, and its Vary repeats it.
    night = derive.edit(panned, image("p"), "make it night", ("job3", None))
    assert night.subject is None
    assert derive.vary(night, image("n"), ("j", None), limit=1).prompt.endswith("made from this prompt: make it night")
    assert derive.subject_of(None) == derive.UNKNOWN_SUBJECT


def test_with_several_references_a_frame_names_the_first_image() -> None:
    for frame, start in (
        (derive.Frame(ratio="16:9"), "Show the first image as it is in a 16:9 (landscape) frame"),
        (derive.Frame(zoom_out=True), "Zoom out from the first image into the same frame"),
        (derive.Frame(ratio="3:2", pan="left"), "Extend the first image towards the left"),
    ):
        assert derive.framed("", frame, references=3)[0].startswith(start)
        assert "the first image" not in derive.framed("", frame)[0]


def test_the_two_variations_ask_for_a_new_take_or_small_changes_and_name_the_first_of_several_images() -> None:
    strong, subtle = derive.varied("a fox", "vary"), derive.varied("a fox", "vary_subtle")
    assert strong.startswith("Make a new take on this image") and "composition" in strong
    assert subtle.startswith("Make a subtle variation of this image") and "only small details" in subtle
    assert strong.endswith("It was made from this prompt: a fox") and subtle.endswith("prompt: a fox")
    assert "the first image" in derive.varied("a fox", "vary_subtle", references=2)
    assert "this image" not in derive.varied("a fox", "vary", references=2)


@given(st.integers(min_value=0, max_value=2**31 - 1))
def test_a_new_seed_is_another_valid_seed(old: int) -> None:
    seed = derive.new_seed(old)
    assert seed != old and 0 <= seed < 2**31


def signed(expires: float) -> str:
    return f"https://cdn.discordapp.com/attachments/1/2/a.png?ex={int(expires):x}&is={int(NOW) - 60:x}&hm=ab12&"


def test_links_are_renewed_when_they_have_expired_or_soon_will() -> None:
    assert expires_at("https://example.com/a.png") is None and not stale("https://example.com/a.png", NOW)
    assert expires_at(signed(NOW + 86_400)) == int(NOW) + 86_400
    assert not stale(signed(NOW + 86_400), NOW)
    assert stale(signed(NOW - 1), NOW)
    assert stale(signed(NOW + REFRESH_MARGIN_SECONDS - 1), NOW)
    assert stale("https://cdn.discordapp.com/a.png?ex=zz&is=1&hm=x", NOW)  # unreadable: renew


def test_an_edit_carries_the_conversation_it_is_given_and_a_variation_of_it_starts_afresh() -> None:
    turn = Turn(prompt="a cat", reference_images=(), result=image("shown"))
    edited = derive.edit(request(prompt="a cat"), image("shown"), "make it night", ("job1", None), history=(turn,))
    assert edited.history == (turn,) and edited.prompt == "make it night"
    assert edited.derived_from is not None and edited.derived_from.action == "edit"
    assert derive.vary(edited, image("night"), ("job2", None), limit=14).history == ()


def test_the_member_s_words_in_a_prompt_the_bot_wrote_are_what_moderation_judges() -> None:
    first = request(prompt="a dancer")
    assert first.member_words is None and first.judged_words == "a dancer"
    varied = derive.vary(first, image("shown"), ("job1", None), limit=1)
    assert " pose " in varied.prompt and varied.judged_words == "a dancer"
    zoomed = derive.edit(first, image("shown"), "", ("job1", None), frame=derive.Frame(zoom_out=True))
    assert zoomed.prompt.startswith("Zoom out") and zoomed.judged_words == ""
    panned = derive.edit(first, image("s"), "a lake\u200b", ("j", None), frame=derive.Frame(ratio="3:2", pan="left"))
    assert panned.prompt.endswith("Also: a lake") and panned.judged_words == "a lake"  # cleaned as the prompt is
    edited = derive.edit(varied, image("shown"), "make it night", ("job2", None))
    assert edited.member_words is None and edited.judged_words == "make it night"
    # A re-render of a Vary draws the words alone: nothing of the bot's to leave out.
    assert derive.upscale(varied, image("v"), "2K", ("job2", None)).member_words is None
    # A conversation carried on keeps each turn's judged words.
    turn = Turn(prompt=varied.prompt, result=image("v"), member_words=varied.member_words)
    assert turn.judged_words == "a dancer" and Turn(prompt="a cat", result=image("c")).judged_words == "a cat"


ORIGIN = ("job1", "https://discord.com/channels/1/2/3")


def test_a_step_reworded_is_the_same_step_from_the_same_image_with_the_new_words() -> None:
    """Change prompt under an image made from another (``reworded``): a Vary by new words, the seed it had; an
    edit's new instruction; a zoom out's or pan's words in place of those it had, the instruction kept once."""
    first = request(reference_images=(image("a"),), aspect_ratio="3:2", seed=7)
    varied = derive.vary(first, image("shown"), ORIGIN, limit=14, strength="vary_subtle")
    assert derive.words_to_change(varied) == "a lighthouse"
    again = derive.reworded(varied, "a lighthouse at night")
    assert again is not None and again.prompt == derive.varied("a lighthouse at night", "vary_subtle", references=2)
    assert (again.subject, again.member_words, again.seed) == ("a lighthouse at night",) * 2 + (varied.seed,)
    assert again.reference_images == varied.reference_images and again.derived_from == varied.derived_from
    assert derive.reworded(varied, "") is None  # nothing to vary it by
    # A Vary of an image no prompt of the bot's made (a member's, reframed) has none of the member's words to show.
    unknown = derive.vary(request(subject=derive.UNKNOWN_SUBJECT), image("shown"), ORIGIN, limit=14)
    assert derive.words_to_change(unknown) == ""

    edited = derive.edit(first, image("shown"), "make it night", ORIGIN)
    assert derive.words_to_change(edited) == "make it night"
    dawn = derive.reworded(edited, "make it dawn", more=(image("hat"),))
    assert dawn is not None and dawn.prompt == "make it dawn" and dawn.member_words is None
    assert [r.filename for r in dawn.reference_images] == ["shown", "hat"]
    assert derive.reworded(edited, "") is None

    zoom = derive.Frame(zoom_out=True)
    zoomed = derive.edit(first, image("shown"), "", ORIGIN, frame=zoom)
    assert derive.words_to_change(zoomed) == ""
    lake = derive.reworded(zoomed, "add a lake")
    assert lake is not None and lake.prompt == derive.framed("add a lake", zoom)[0]
    boat = derive.reworded(lake, "add a boat", more=(image("boat"),))
    assert boat is not None and boat.prompt == derive.framed("add a boat", zoom, references=2)[0]
    assert (boat.member_words, boat.subject) == ("add a boat", "a lighthouse")
    plain = derive.reworded(lake, "")  # no words: the zoom out alone
    assert plain is not None and plain.prompt == derive.framed("", zoom)[0] and plain.member_words == ""

    pan = derive.Frame(ratio="21:9", pan="left")
    panned = derive.edit(first, image("shown"), "a road", ORIGIN, frame=pan)
    bridge = derive.reworded(panned, "a bridge")
    assert bridge is not None and bridge.prompt == derive.framed("a bridge", pan)[0] and bridge.aspect_ratio == "21:9"
    assert bridge.derived_from == panned.derived_from

    # A new shape alone, given words, is an edit in that shape, as the Edit form makes it.
    reframed = derive.edit(first, image("shown"), "", ORIGIN, frame=derive.Frame(ratio="16:9"))
    night = derive.reworded(reframed, "at night")
    assert night is not None and (night.prompt, night.aspect_ratio) == ("at night", "16:9")
    assert night.derived_from is not None and night.derived_from.action == "edit" and night.subject is None

    # A re-render has no words of its own; a reply's edit (a conversation, no "Made from") has its instruction.
    assert derive.words_to_change(derive.upscale(first, image("shown"), "4K", ORIGIN)) is None
    reply = request(prompt="now in snow", history=(Turn(prompt="a lighthouse", result=image("shown")),))
    assert derive.words_to_change(reply) == "now in snow"
    rain = derive.reworded(reply, "now in rain")
    assert rain is not None and rain.prompt == "now in rain" and rain.history == reply.history


def test_make_square_is_offered_for_an_image_that_is_not_square_on_a_model_with_1_1() -> None:
    shapes = derive.shapes(catalogue(), "nano_banana_2")
    assert derive.squares(16 / 9, shapes) and derive.squares(9 / 16, shapes) and derive.squares(None, shapes)
    assert not derive.squares(1.0, shapes) and not derive.squares(1024 / 1016, shapes)  # within 2%: square
    assert not derive.squares(16 / 9, ("16:9", "9:16"))  # no square shape here
