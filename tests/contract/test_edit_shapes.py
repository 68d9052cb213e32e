"""An edit that picks no shape: references and no aspect ratio, which the bot sends to mean "keep the
reference's own shape" (bot/derive.py AS_IT_IS, /imagine with references and no ratio). What each provider
receives, and the shape of the image that comes back, for every adapter and model, against its fake."""

from __future__ import annotations

from typing import Any

import httpx

from bot.models import ReferenceImage, UpdateStatus
from tests.providers.helpers import (
    ADAPTERS,
    NB2,
    PRO,
    SleepRecorder,
    image_bytes,
    models_of,
    picture_size,
    req,
    run_to_end,
)

# (adapter, model) -> the aspect ratio field its create carries (None: left out). docs/providers.md 8.1 says
# which APIs take `auto`: there the bot sends it, as the field's default would be square (Kie Pro 1:1 (4.1),
# Segmind NB2 1:1 (5.2)) or is `auto` already (Kie and sinancode NB2). SeaArt and Gemini have no `auto` and
# get no field: SeaArt's Pro then follows the input image (2.4); Gemini's model chooses from the references
# (6.2). Segmind's Pro takes no `auto` either (5.5).
SENT: dict[tuple[str, str], str | None] = {
    ("seaart", NB2): None,
    ("seaart", PRO): None,
    ("kie", NB2): "auto",
    ("kie", PRO): "auto",
    ("sinancode", NB2): "auto",
    ("segmind_v1", NB2): "auto",
    ("segmind_v1", PRO): None,
    ("segmind_v2", NB2): "auto",
    ("segmind_v2", PRO): None,
    ("gemini", NB2): None,
    ("gemini", PRO): None,
}
# Where the bot cannot ask for the reference's shape: SeaArt's NB2 documents no default (2.3) and Segmind's
# Pro neither takes `auto` nor documents its default (5.5, [U]); their fakes make such an image square.
SQUARE = {("seaart", NB2), ("segmind_v1", PRO), ("segmind_v2", PRO)}
REFERENCE = (64, 48)  # 4:3
KEPT = (1024, 768)  # 4:3 at 1K
SQUARE_1K = (1024, 1024)


def sent_ratio(adapter_id: str, body: Any) -> str | None:
    """The ratio field of a create body as the provider received it (None: not there)."""
    assert isinstance(body, dict)
    if adapter_id == "gemini":
        ratio = body["generationConfig"]["imageConfig"].get("aspectRatio")
    else:
        ratio = (body["input"] if adapter_id == "kie" else body).get("aspect_ratio")
    assert ratio is None or isinstance(ratio, str)
    return ratio


async def test_an_edit_without_a_ratio_keeps_its_references_shape_where_the_api_allows(
    client: httpx.AsyncClient,
) -> None:
    served = {(adapter_id, model) for adapter_id in ADAPTERS for model in models_of(adapter_id)}
    assert served == set(SENT)
    received: dict[tuple[str, str], str | None] = {}
    shapes: dict[tuple[str, str], tuple[int, int]] = {}
    for adapter_id, model in sorted(SENT):
        adapter = ADAPTERS[adapter_id]
        async with adapter.make_fake() as fake:
            provider = adapter.connect(fake, client, SleepRecorder())
            url = fake.register_image("reference", REFERENCE)
            reference = ReferenceImage(url=url, content_type="image/png", size=len(fake.image_bytes("reference")))
            handle = await provider.submit(req(model, reference_images=(reference,), resolution="1K"))
            (create,) = fake.creates
            received[adapter_id, model] = sent_ratio(adapter_id, create.json)
            final = (await run_to_end(provider, handle))[-1]
            assert final.status is UpdateStatus.SUCCEEDED, (adapter_id, model, final.error_detail)
            shapes[adapter_id, model] = picture_size(await image_bytes(final.images[0], client))
    assert received == SENT
    assert shapes == {key: SQUARE_1K if key in SQUARE else KEPT for key in SENT}
