"""What a form's submit carries, read from the payload as Discord sends it (cogs/imagine.py) and judged
(cogs/shape_field.py). A modified client can send any JSON: reading it never fails, and what is not one of
the form's choices is refused with a message, never taken."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from bot.derive import AS_IT_IS, Frame
from bot.errors import InvalidRequestError
from cogs.imagine import submitted_text, submitted_values
from cogs.shape_field import FORM_HINT, KEEP, ZOOM_OUT, asked_change

SHAPES = ("1:1", "16:9", "9:16", "4:3")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["type", "custom_id", "value", "values", "component", "components"]) | st.text(max_size=4),
            inner,
            max_size=5,
        )
    ),
    max_leaves=20,
)


def label(component: dict[str, Any]) -> dict[str, Any]:
    return {"type": 18, "component": component}


def test_text_and_choices_are_found_in_labels_and_in_older_action_rows() -> None:
    components = [
        label({"type": 4, "custom_id": "instruction", "value": "make it night"}),
        label({"type": 3, "custom_id": "shape", "values": ["16:9"]}),
        {"type": 1, "components": [{"type": 4, "custom_id": "old", "value": "as before"}]},
    ]
    assert submitted_text(components, "instruction") == "make it night"
    assert submitted_text(components, "old") == "as before"
    assert submitted_values(components, "shape") == ["16:9"]
    assert submitted_values(components, "absent") is None and submitted_text(components, "absent") is None
    # A select whose values are not a list (no client sends that) is a select with nothing chosen.
    assert submitted_values([label({"type": 3, "custom_id": "shape", "values": "16:9"})], "shape") == []


@given(json_values)
@example({"type": True, "components": True})  # True == 1: a "row" whose components were no list (TypeError)
@example({"type": 1, "components": {"type": 4, "custom_id": "instruction"}})
def test_reading_any_payload_never_fails(payload: Any) -> None:
    components = payload if isinstance(payload, list) else [payload]
    text = submitted_text(components, "instruction")
    values = submitted_values(components, "shape")
    assert text is None or isinstance(text, str)
    assert values is None or all(isinstance(value, str) for value in values)


choices = st.sampled_from([KEEP, ZOOM_OUT, "pan-left", "pan-up", "pan-x", *SHAPES]) | st.text(max_size=12)


@given(st.text(max_size=30), st.lists(choices, max_size=3) | st.none(), st.none() | st.floats(0.1, 10))
@example("", ["pan-up"], 1.5)  # asked in 1:1, answered 3:2: panning up is 1:1 again, and must say so
def test_whatever_is_sent_the_change_is_one_offered_or_a_refusal(
    text: str, picked: list[str] | None, shown: float | None
) -> None:
    try:
        words, frame, _ignored = asked_change(
            text, picked, offered=SHAPES, current="1:1", proportion=shown, model_name="Nano Banana 2"
        )
    except InvalidRequestError as exc:
        assert exc.user_message  # a refusal a member can read
        return
    assert frame.ratio is None or frame.ratio in SHAPES
    assert frame.pan is None or (shown is not None and frame.ratio is not None)
    # The shape the image was asked in is no new shape, but for a pan, whose shape comes from what the image is.
    assert frame.ratio != "1:1" or frame.pan is not None
    assert words or frame != AS_IT_IS
    assert "--ar" not in words[-12:] or frame.ratio is None


@pytest.mark.parametrize(
    ("text", "picked", "expected"),
    [
        ("make it night", None, ("make it night", AS_IT_IS)),
        ("make it night", [KEEP], ("make it night", AS_IT_IS)),
        ("", [ZOOM_OUT], ("", Frame(zoom_out=True))),
        ("", ["16:9"], ("", Frame(ratio="16:9"))),
        ("wider --ar 16:9", [KEEP], ("wider", Frame(ratio="16:9"))),
        ("wider --ar 16:9", [ZOOM_OUT], ("wider", Frame(ratio="16:9", zoom_out=True))),
        ("wider --ar 16:9", ["16:9"], ("wider", Frame(ratio="16:9"))),  # the same shape twice: no conflict
        ("night", ["1:1"], ("night", AS_IT_IS)),  # the shape the image has
        ("--zoom 2", None, ("", Frame(zoom_out=True))),  # Midjourney's zoom out, typed
        ("a lake --ar 16:9 --zoom", [KEEP], ("a lake", Frame(ratio="16:9", zoom_out=True))),
        ("", ["pan-left"], ("", Frame(ratio="4:3", pan="left"))),  # 1.5 wide: 4:3 is the nearest of SHAPES
        ("", ["pan-down"], ("", Frame(ratio="9:16", pan="down"))),  # no 3:4 among SHAPES
        # Midjourney's other parameters: --no in words, the rest (a seed too: an edit keeps its image's) named.
        ("no hat --no people --v 6 --seed 3", None, ("no hat, without people", AS_IT_IS, ("--v 6", "--seed 3"))),
        ("a hat --r 2", None, ("a hat", AS_IT_IS, ("--repeat 2",))),
        ("--zoom --style 4b", None, ("", Frame(zoom_out=True), ("--style 4b",))),
    ],
)
def test_what_a_member_asks_for(text: str, picked: list[str] | None, expected: tuple[Any, ...]) -> None:
    asked = asked_change(text, picked, offered=SHAPES, current="1:1", proportion=1.0, model_name="Nano Banana 2")
    assert asked == (expected if len(expected) == 3 else (*expected, ()))


@pytest.mark.parametrize(
    ("text", "picked", "refusal"),
    [
        ("", None, FORM_HINT),
        ("  ", [KEEP], FORM_HINT),
        ("--ar 1:1", [], FORM_HINT),
        ("x", ["8:1"], "cannot be given the shape `8:1` here. Choose one of: 1:1, 16:9, 9:16, 4:3."),
        ("x --ar 21:9", None, "cannot be given the shape `21:9`"),
        ("x", ["`@everyone` [a](https://x.example)"], "the shape `'@everyone' [a](http` here"),
        ("x --ar 4:3", ["16:9"], "You picked the shape 16:9 and typed `--ar 4:3`"),
        ("", ["pan-left"], "cannot be extended left"),  # the image's size unknown: nothing to make room from
    ],
)
def test_what_is_refused(text: str, picked: list[str] | None, refusal: str) -> None:
    with pytest.raises(InvalidRequestError) as refused:
        asked_change(text, picked, offered=SHAPES, current="1:1", model_name="Nano Banana 2")
    assert refusal in refused.value.user_message


def test_a_pan_and_a_typed_zoom_out_are_one_too_many() -> None:
    with pytest.raises(InvalidRequestError) as refused:
        asked_change("x --zoom", ["pan-up"], offered=SHAPES, current="1:1", proportion=1.0, model_name="NB2")
    assert "You picked to pan up and typed `--zoom`" in refused.value.user_message
