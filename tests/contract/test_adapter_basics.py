"""What every adapter is before it sends anything: a Provider, configured or refused with the setting
named, offering the models each provider documents, and refusing what a model cannot take without a
request leaving the bot."""

from __future__ import annotations

import functools

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.errors import ConfigError, InvalidRequestError
from bot.models import GenerationRequest, ReferenceImage, Turn
from bot.providers.base import Capabilities, Provider, validate
from bot.providers.gemini import MAX_PAST_TURNS
from tests.providers.helpers import (
    ADAPTERS,
    NB2,
    PRO,
    Adapter,
    Fake,
    assert_user_safe,
    models_of,
    ref,
    references,
    req,
    valid_requests,
)

MIB = 1024 * 1024
RESOLUTIONS = ("512", "1K", "2K", "4K")

# ---- the provider as a whole ------------------------------------------------------------------------

# adapter -> (the models it offers, what its repr names besides the base URL)
OFFERS: dict[str, tuple[set[str], tuple[str, ...]]] = {
    "seaart": ({NB2, PRO}, ()),
    "kie": ({NB2, PRO}, ("kie",)),
    "sinancode": ({NB2}, ("sinancode",)),
    "segmind_v1": ({NB2, PRO}, ()),
    "segmind_v2": ({NB2, PRO}, ()),
    "gemini": ({NB2, PRO}, ("gemini-3.1-flash-image",)),
}


async def test_implements_the_provider_protocol(adapter: Adapter, fake: Fake, provider: Provider) -> None:
    models, named = OFFERS[adapter.id]
    assert isinstance(provider, Provider)
    assert provider.name == adapter.name
    assert set(provider.models) == models
    assert fake.api_key not in repr(provider) and all(word in repr(provider) for word in named)
    await provider.aclose()


DEFAULT_BASE_URLS = {
    "seaart": "https://cloud.seaart.ai/model",  # docs/providers.md 2.1
    "kie": "https://api.kie.ai",  # docs/providers.md 4.1
    "sinancode": "https://api.sinancode.com/v1",  # docs/providers.md 4.2
    "segmind_v1": "https://api.segmind.com",  # docs/providers.md 5.2, 5.3
    "segmind_v2": "https://api.segmind.com",
    "gemini": "https://generativelanguage.googleapis.com",  # docs/providers.md 6.1
}


@pytest.mark.parametrize("adapter_id", list(ADAPTERS))
async def test_documented_default_base_urls(client: httpx.AsyncClient, adapter_id: str) -> None:
    provider = ADAPTERS[adapter_id].make_provider(api_key="k", client=client)
    assert f"base_url='{DEFAULT_BASE_URLS[adapter_id]}'" in repr(provider)


BAD_SETTINGS = {
    "blank-key": ({"api_key": "  "}, "api_key"),
    "key-with-a-space": ({"api_key": "ab cd"}, "api_key"),
    "ftp-base-url": ({"api_key": "k", "base_url": "ftp://x"}, "base_url"),
    "base-url-without-scheme": ({"api_key": "k", "base_url": "api.example.com"}, "base_url"),
}


@pytest.mark.parametrize("adapter_id", list(ADAPTERS))
@pytest.mark.parametrize("case", list(BAD_SETTINGS))
async def test_bad_settings_are_config_errors(client: httpx.AsyncClient, adapter_id: str, case: str) -> None:
    adapter = ADAPTERS[adapter_id]
    kwargs, setting = BAD_SETTINGS[case]
    with pytest.raises(ConfigError) as info:
        adapter.make_provider(client=client, **kwargs)
    assert info.value.setting == f"{adapter.name}.{setting}"


# ---- the models each provider offers (docs/providers.md 2.3-2.4, 4.1-4.2, 5.2-5.5, 6.2) -----------

PRO_RATIOS = {"1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"}
NB2_RATIOS = PRO_RATIOS | {"1:4", "4:1", "1:8", "8:1"}
# What a model is unless its provider's entry below says otherwise.
USUAL: dict[str, object] = {
    "default_resolution": "1K",
    "min_prompt_chars": 1,
    "max_reference_images": 14,
    "reference_mime_types": ("image/png", "image/jpeg", "image/webp"),
    "max_reference_bytes": 10 * MIB,
    "seed": False,
    "output_formats": (),
    "thinking_levels": (),
    "web_search": False,
    "safety_knob": False,
    "queued": True,
}
FAMILY: dict[str, dict[str, object]] = {
    NB2: {"display_name": "Nano Banana 2", "aspect_ratios": NB2_RATIOS | {"auto"}, "resolutions": RESOLUTIONS},
    PRO: {"display_name": "Nano Banana Pro", "aspect_ratios": PRO_RATIOS, "resolutions": ("1K", "2K", "4K")},
}
_KIE_NB2 = {
    "provider_model": "nano-banana-2",
    "max_prompt_chars": 20000,
    "max_reference_bytes": 28 * MIB,
    "resolutions": ("1K", "2K", "4K"),
    "output_formats": ("jpg", "png"),
    "web_search": True,
    "prices": {"1K": 40_000, "2K": 60_000, "4K": 90_000},
}
_SEGMIND = {
    NB2: {
        "provider_model": "nano-banana-2",
        "max_prompt_chars": 5000,
        "seed": True,
        "output_formats": ("jpg", "png"),
        "thinking_levels": ("minimal", "high"),
        "web_search": True,
        "safety_knob": True,
        "prices": {"512": 60_000, "1K": 80_000, "2K": 120_000, "4K": 160_000},
    },
    PRO: {
        "provider_model": "nano-banana-pro",
        "max_prompt_chars": 5000,
        "output_formats": ("jpg", "png"),
        "prices": {"1K": 150_000, "2K": 150_000, "4K": 250_000},
    },
}
# 6.3 [C]: a request's inline images up to 100 MB, none per image: one may have the bot's whole 70 MiB.
_GEMINI = {
    "max_prompt_chars": 20000,
    "max_reference_bytes": 70 * MIB,
    "web_search": True,
    "safety_knob": True,
    "queued": False,
}
# adapter -> model -> how it differs from USUAL and its FAMILY
CAPABILITIES: dict[str, dict[str, dict[str, object]]] = {
    "seaart": {
        NB2: {
            "provider_model": "nano_banana_2",
            "max_prompt_chars": 2500,
            "max_reference_images": 3,
            "aspect_ratios": NB2_RATIOS,
            "prices": {"512": 30_000, "1K": 40_000, "2K": 60_000, "4K": 90_000},
        },
        PRO: {
            "provider_model": "nano_banana_pro",
            "max_prompt_chars": 2500,
            "prices": {"1K": 90_000, "2K": 90_000, "4K": 150_000},
        },
    },
    "kie": {
        NB2: _KIE_NB2,
        PRO: {
            "provider_model": "nano-banana-pro",
            "max_prompt_chars": 10000,
            "max_reference_images": 8,
            "max_reference_bytes": 28 * MIB,
            "aspect_ratios": PRO_RATIOS | {"auto"},
            "output_formats": ("png", "jpg"),
            "prices": {"1K": 90_000, "2K": 90_000, "4K": 120_000},
        },
    },
    "sinancode": {NB2: _KIE_NB2},  # the same model as Kie's, proxied; no Pro
    "segmind_v1": {model: caps | {"queued": False} for model, caps in _SEGMIND.items()},
    "segmind_v2": _SEGMIND,
    "gemini": {
        NB2: _GEMINI
        | {
            "provider_model": "gemini-3.1-flash-image",
            "thinking_levels": ("minimal", "high"),
            "prices": {"512": 45_000, "1K": 67_000, "2K": 101_000, "4K": 151_000},
        },
        PRO: _GEMINI
        | {
            "provider_model": "gemini-3-pro-image",
            "aspect_ratios": PRO_RATIOS | {"auto"},
            "prices": {"1K": 134_000, "2K": 134_000, "4K": 240_000},
        },
    },
}


def expected_caps(adapter_id: str, model: str) -> dict[str, object]:
    return USUAL | FAMILY[model] | CAPABILITIES[adapter_id][model]


@pytest.mark.parametrize("adapter_id", list(ADAPTERS))
def test_capabilities_are_data(adapter_id: str) -> None:
    models = models_of(adapter_id)
    assert set(models) == set(CAPABILITIES[adapter_id])
    for model, caps in models.items():
        expected = expected_caps(adapter_id, model)
        assert caps.model == model
        for field, value in expected.items():
            if field == "prices":
                continue
            actual = getattr(caps, field)
            assert (set(actual) if field == "aspect_ratios" else actual) == value, (model, field)
        prices = expected["prices"]
        assert isinstance(prices, dict)
        assert {r: caps.price(r) for r in RESOLUTIONS} == {r: prices.get(r) for r in RESOLUTIONS}
        assert caps.price(None) == caps.price(caps.default_resolution)


def test_gemini_estimates_count_the_images_sent_up_to_the_model_s_limit() -> None:
    """Gemini bills every image a request sends (references, and the earlier turns of a conversation it sends
    back) as input tokens; other providers price per image made. Counted as the adapter sends them."""
    flash, pro = models_of("gemini")[NB2], models_of("gemini")[PRO]

    def image(n: int) -> ReferenceImage:
        return ReferenceImage(url=f"https://cdn.example/{n}.png", content_type="image/png", size=1)

    assert flash.price_of(req(NB2)) == 67_000
    assert flash.price_of(req(NB2, reference_images=(image(1),) * 3, web_search=True)) == 67_000 + 14_000 + 3 * 560
    # A conversation of turns Gemini signed, each adding one reference of the member's: the first turn sent
    # sends its two references and its result; each later one its new reference and its result; the request
    # edits the last result (sent as that turn's answer) and adds one reference of its own.
    turns = [
        Turn(
            prompt=f"step {n}", reference_images=(image(n - 1), image(100 + n)), result=image(n), thought_signature="s"
        )
        for n in range(1, 11)
    ]
    two = req(NB2, reference_images=(image(2), image(200)), history=tuple(turns[:2]))
    assert flash.price_of(two) == 67_000 + (1 + 3 + 2) * 560
    # Ten turns: at most the last MAX_PAST_TURNS (5) go back, within Pro's 14 images: 1 + 3 + 4 * 2.
    ten = req(PRO, reference_images=(image(10), image(200)), history=tuple(turns))
    assert MAX_PAST_TURNS == 5 and pro.price_of(ten) == 134_000 + 12 * 1_100
    # Past the image limit the oldest turns are left out: seven references of its own leave room for three.
    crowded = req(PRO, reference_images=(image(10), *(image(300 + n) for n in range(7))), history=tuple(turns))
    assert pro.price_of(crowded) == 134_000 + (7 + 3 + 2 * 2) * 1_100
    # A request that does not edit the last result sends none of the conversation.
    apart = req(NB2, reference_images=(image(300),), history=tuple(turns[:2]))
    assert flash.price_of(apart) == 67_000 + 560
    seaart = models_of("seaart")[NB2]
    assert seaart.price_of(req(NB2, reference_images=(image(1),) * 3)) == seaart.price(None) == 40_000


# ---- refusals: nothing a model cannot take leaves the bot ---------------------------------------------


def refusals(adapter_id: str) -> dict[str, GenerationRequest]:
    """For every model the adapter offers (per CAPABILITIES), one request per limit it oversteps."""
    cases = {
        "blank-prompt": req(prompt="  \n\t "),
        "pdf-reference": req(reference_images=(ref(1, "application/pdf"),)),
        "gif-reference": req(reference_images=(ref(1, "image/gif"),)),
        "file-url": req(reference_images=(ReferenceImage(url="file:///etc/passwd", content_type="image/png", size=1),)),
        "unknown-model": req("nano_banana_9"),
    }
    for model in (NB2, PRO):
        tag = "nb2" if model == NB2 else "pro"
        if model not in CAPABILITIES[adapter_id]:
            cases[f"{tag}-not-offered"] = req(model)
            continue
        caps = expected_caps(adapter_id, model)
        prompt_limit, refs_limit, bytes_limit = (
            int(str(caps[name])) for name in ("max_prompt_chars", "max_reference_images", "max_reference_bytes")
        )
        ratios, resolutions = caps["aspect_ratios"], caps["resolutions"]
        formats, levels = caps["output_formats"], caps["thinking_levels"]
        assert isinstance(ratios, set) and isinstance(resolutions, tuple)
        assert isinstance(formats, tuple) and isinstance(levels, tuple)
        cases[f"{tag}-long-prompt"] = req(model, prompt="x" * (prompt_limit + 1))
        cases[f"{tag}-too-many-references"] = req(model, reference_images=tuple(ref(n) for n in range(refs_limit + 1)))
        cases[f"{tag}-huge-reference"] = req(model, reference_images=(ref(1, size=bytes_limit + 1),))
        for ratio in sorted({"auto", "1:4", "4:1", "1:8", "8:1", "7:3"} - ratios):
            cases[f"{tag}-ratio-{ratio}"] = req(model, aspect_ratio=ratio)
        for size in sorted({"512", "8K"} - set(resolutions)):
            cases[f"{tag}-size-{size}"] = req(model, resolution=size)
        for fmt in sorted({"png", "jpg", "webp"} - set(formats)):
            cases[f"{tag}-format-{fmt}"] = req(model, output_format=fmt)
        for level in sorted({"minimal", "high", "medium"} - set(levels)):
            cases[f"{tag}-thinking-{level}"] = req(model, thinking_level=level)
        if not caps["seed"]:
            cases[f"{tag}-seed"] = req(model, seed=7)
        if not caps["web_search"]:
            cases[f"{tag}-web-search"] = req(model, web_search=True)
    return cases


REFUSALS = [(adapter_id, case) for adapter_id in ADAPTERS for case in refusals(adapter_id)]


@pytest.mark.parametrize(("adapter", "case"), REFUSALS, indirect=["adapter"])
async def test_refusals_never_reach_the_provider(adapter: Adapter, fake: Fake, provider: Provider, case: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        await provider.submit(refusals(adapter.id)[case])
    assert_user_safe(info.value.user_message, fake)
    assert fake.requests == []


@pytest.mark.parametrize("adapter", [a for a in ADAPTERS if not models_of(a)[NB2].seed], indirect=True)
async def test_a_seed_refusal_says_to_leave_it_unset(provider: Provider) -> None:
    with pytest.raises(InvalidRequestError) as info:
        await provider.submit(req(seed=7))
    assert "seed" in info.value.user_message and "leave it unset" in info.value.user_message


# ---- validate(): what it lets through and what it refuses, for every model of every adapter ----------


def _one_thing_wrong(caps: Capabilities) -> st.SearchStrategy[dict[str, object]]:
    whitespace = st.text(alphabet=" \t\n\r\u00a0\u2003", max_size=30)
    not_offered = st.sampled_from(["minimal", "high", "medium"]) | st.text(max_size=8)
    wrong = [
        st.integers(caps.max_prompt_chars + 1, caps.max_prompt_chars + 500).map(lambda n: {"prompt": "b" * n}),
        whitespace.map(lambda p: {"prompt": p}),
        st.text(max_size=8).filter(lambda r: r not in caps.aspect_ratios).map(lambda r: {"aspect_ratio": r}),
        st.text(max_size=8).filter(lambda r: r not in caps.resolutions).map(lambda r: {"resolution": r}),
        st.text(max_size=5).filter(lambda f: f not in caps.output_formats).map(lambda f: {"output_format": f}),
        not_offered.filter(lambda t: t not in caps.thinking_levels).map(lambda t: {"thinking_level": t}),
        st.lists(references(caps), min_size=caps.max_reference_images + 1, max_size=caps.max_reference_images + 3).map(
            lambda refs: {"reference_images": tuple(refs)}
        ),
        st.sampled_from(["image/gif", "application/pdf", "text/plain", ""]).map(
            lambda t: {"reference_images": (ReferenceImage(url="https://x.test/r", content_type=t, size=1),)}
        ),
        st.integers(caps.max_reference_bytes + 1, 2**40).map(
            lambda n: {"reference_images": (ReferenceImage(url="https://x.test/r", content_type="image/png", size=n),)}
        ),
    ]
    if not caps.seed:
        wrong.append(st.integers(0, 2**31 - 1).map(lambda s: {"seed": s}))
    if not caps.web_search:
        wrong.append(st.just({"web_search": True}))
    return st.one_of(wrong)


# The strategies are built once per adapter, not per example: building one (and Hypothesis validating it on its
# first draw) cost more than drawing from it and running validate(). Each is any of the adapter's models, then a
# request (or one thing wrong) for that model, as drawing the model first and then its request did.
@functools.cache
def _in_range(adapter_id: str) -> st.SearchStrategy[tuple[Capabilities, GenerationRequest]]:
    return st.one_of([st.tuples(st.just(caps), valid_requests(caps)) for caps in models_of(adapter_id).values()])


@functools.cache
def _out_of_range(adapter_id: str) -> st.SearchStrategy[tuple[Capabilities, dict[str, object]]]:
    return st.one_of([st.tuples(st.just(caps), _one_thing_wrong(caps)) for caps in models_of(adapter_id).values()])


@pytest.mark.parametrize("adapter_id", list(ADAPTERS))
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_validate_accepts_everything_in_range(adapter_id: str, data: st.DataObject) -> None:
    caps, request = data.draw(_in_range(adapter_id))
    validate(request, caps)


@pytest.mark.parametrize("adapter_id", list(ADAPTERS))
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_validate_refuses_anything_out_of_range(adapter_id: str, data: st.DataObject) -> None:
    caps, wrong = data.draw(_out_of_range(adapter_id))
    fields: dict[str, object] = {"model": caps.model, "prompt": "a cat"} | wrong
    with pytest.raises(InvalidRequestError) as info:
        validate(GenerationRequest.model_validate(fields), caps)
    assert info.value.user_message


@pytest.mark.parametrize("adapter_id", list(ADAPTERS))
def test_validate_takes_each_limit_itself(adapter_id: str) -> None:
    for caps in models_of(adapter_id).values():
        validate(req(caps.model, prompt="a" * caps.max_prompt_chars), caps)
        validate(req(caps.model, prompt=" a "), caps)
        validate(req(caps.model, reference_images=tuple(ref(n) for n in range(caps.max_reference_images))), caps)
        validate(req(caps.model, reference_images=(ref(1, size=caps.max_reference_bytes),)), caps)
