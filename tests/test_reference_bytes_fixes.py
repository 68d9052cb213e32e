"""References judged by their bytes, whatever they claim: a phone's JPEG with its video after the picture (a
Pixel Motion Photo, an MVIMG, Samsung's Motion Photo) is taken as the JPEG it starts with, and Gemini gets
that JPEG alone; a JPEG named sketch.png goes to Gemini as the JPEG it is, as to every other provider."""

from __future__ import annotations

import io
import random
from pathlib import Path

import httpx
import pytest
from PIL import Image

from bot.errors import DeliveryError, InvalidRequestError
from bot.images import check_reference, inspect
from bot.models import ReferenceImage
from bot.providers.gemini import GeminiProvider
from bot.testing.discord import FakeDiscord
from bot.testing.providers import FakeSeaArt
from bot.testing.providers.gemini import FakeGemini
from tests.conftest import make_settings, start_bot
from tests.e2e.test_failover import Fakes, boot, done, fakes, rows  # noqa: F401
from tests.providers.helpers import ADAPTERS, SleepRecorder, fake_fixture, req


def encode(img: Image.Image, fmt: str = "JPEG") -> bytes:
    out = io.BytesIO()
    img.save(out, fmt)
    return out.getvalue()


PHOTO = encode(Image.effect_noise((96, 64), 40).convert("RGB"))
GAIN_MAP = encode(Image.new("L", (48, 32), 90))  # Ultra HDR: a second, smaller JPEG after the photo


def video(size: int, seed: int) -> bytes:
    """An MP4 as phones append it: an ftyp box, then an mdat of ``size`` bytes (no FF byte in it, so no
    end-of-image marker can turn up by chance near the end of the file)."""
    payload = random.Random(seed).randbytes(size).replace(b"\xff", b"\xfe")
    return b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + (size + 8).to_bytes(4, "big") + b"mdat" + payload


PHONE = {
    # Pixel (Motion Photo): the video straight after the photo's EOI, megabytes of it.
    "pixel motion photo": PHOTO + video(2_000_000, 1),
    # Pixel 2-3 (MVIMG), a shorter clip.
    "mvimg": PHOTO + video(300_000, 2),
    # Pixel 8 and later: the Ultra HDR gain map, then the video.
    "ultra hdr motion photo": PHOTO + GAIN_MAP + video(1_000_000, 3),
    # Samsung: a marker, the video, then Samsung's own trailer.
    "samsung motion photo": PHOTO + b"MotionPhoto_Data" + video(500_000, 4) + b"SEFH\x6b\x00\x00\x00" + b"SEFT",
}


@pytest.mark.parametrize("name", list(PHONE))
def test_a_phone_jpeg_with_its_video_after_the_picture_is_taken_as_that_jpeg(name: str) -> None:
    data = PHONE[name]
    with Image.open(io.BytesIO(data)) as img:  # what Pillow, browsers and the providers make of it
        img.load()
        assert (img.format, img.size) in {("JPEG", (96, 64)), ("MPO", (96, 64))}
    assert check_reference(data, "PXL_20250101_MP.jpg") == ("image/jpeg", 96, 64)
    assert check_reference(io.BytesIO(data), "PXL_20250101_MP.jpg") == ("image/jpeg", 96, 64)
    # Still refused: the same photo cut short (its EOI never reached) with the video after it, and a video
    # that only starts like a JPEG.
    for broken in (PHOTO[: len(PHOTO) // 2] + data[len(PHOTO) :], b"\xff\xd8\xff" + data[len(PHOTO) :]):
        with pytest.raises(InvalidRequestError, match="damaged or incomplete"):
            check_reference(broken, "PXL_20250101_MP.jpg")
    # A provider's result is posted as it is, so one with something after its picture is still refused.
    with pytest.raises(DeliveryError):
        inspect(data)


# ---- Gemini: sends what the bytes are, and of a Motion Photo the picture alone -----------------------------

fake = fake_fixture("gemini")


@pytest.fixture
def provider(fake: FakeGemini, client: httpx.AsyncClient, sleeps: SleepRecorder) -> GeminiProvider:
    provider = ADAPTERS["gemini"].connect(fake, client, sleeps)
    assert isinstance(provider, GeminiProvider)
    return provider


def provider_ref(fake: FakeGemini, name: str, data: bytes, content_type: str) -> ReferenceImage:
    """``data`` served by the fake as Discord would, typed as ``content_type`` (what its name says)."""
    url = fake.serve_reference(name, data, content_type)
    return ReferenceImage(url=url, content_type=content_type, size=len(data), filename=name)


async def test_gemini_sends_a_mislabelled_reference_as_what_its_bytes_are(
    provider: GeminiProvider, fake: FakeGemini
) -> None:
    """Discord types an attachment by its name: a JPEG saved as sketch.png is "image/png" there. It was refused
    on Gemini alone ("says it is PNG but is really a JPEG")."""
    png = encode(Image.new("RGB", (40, 30), (1, 2, 3)), "PNG")
    refs = (
        provider_ref(fake, "sketch.png", PHOTO, "image/png"),
        provider_ref(fake, "photo.webp", png, "image/webp"),
    )
    await provider.submit(req(reference_images=refs))
    (call,) = fake.jobs.values()
    assert call.references == [("image/jpeg", PHOTO), ("image/png", png)]


@pytest.mark.parametrize("name", list(PHONE))
async def test_gemini_gets_a_motion_photo_s_picture_without_its_video(
    provider: GeminiProvider, fake: FakeGemini, name: str
) -> None:
    """Seconds of video (with sound) the member did not mean to send, counted against Gemini's inline limit:
    the JPEG before it is sent, cut at its end, not re-encoded."""
    await provider.submit(req(reference_images=(provider_ref(fake, "PXL_MP.jpg", PHONE[name], "image/jpeg"),)))
    (call,) = fake.jobs.values()
    assert call.references == [("image/jpeg", PHOTO)]


# ---- the real bot ----------------------------------------------------------------------------------------


async def test_a_motion_photo_is_made_on_seaart(tmp_path: Path, discord_fake: FakeDiscord, seaart: FakeSeaArt) -> None:
    """Refused before as "damaged or incomplete": the bot wanted its EOI within the file's last 1,024 bytes."""
    running = await start_bot(make_settings(tmp_path, discord_fake, seaart), discord_fake)
    settings = running.bot.settings
    try:
        att = discord_fake.add_attachment(PHONE["pixel motion photo"], "PXL_20250101_MP.jpg", "image/jpeg")
        await discord_fake.slash_command("imagine", {"prompt": "make it a painting", "image1": att})
        await discord_fake.wait_for(lambda: done(settings), timeout=20)
    finally:
        await running.close()
    ((state, error),) = [(r["state"], r["error_message"]) for r in rows(settings)]
    assert (state, error) == ("delivered", None)
    (create,) = seaart.creates
    assert create.json is not None and att["url"] in str(create.json)


async def test_a_motion_photo_and_a_jpeg_named_png_are_made_on_gemini(
    tmp_path: Path,
    discord_fake: FakeDiscord,
    fakes: Fakes,  # noqa: F811
) -> None:
    settings = fakes.settings(tmp_path, discord_fake, ["gemini"])
    running = await boot(settings, discord_fake)
    try:
        motion = discord_fake.add_attachment(PHONE["ultra hdr motion photo"], "PXL_20250101_MP.jpg", "image/jpeg")
        sketch = discord_fake.add_attachment(PHOTO, "sketch.png", "image/png")
        await discord_fake.slash_command("imagine", {"prompt": "colour it in", "image1": motion, "image2": sketch})
        await discord_fake.wait_for(lambda: done(settings), timeout=30)
    finally:
        await running.close()
    (job,) = rows(settings)
    assert (job["state"], job["error_message"]) == ("delivered", None)
    (call,) = fakes.gemini.jobs.values()
    assert call.references == [("image/jpeg", PHOTO), ("image/jpeg", PHOTO)]


async def test_gemini_takes_an_ultra_hdr_photo_whose_jpeg_carries_a_multi_picture_block(
    provider: GeminiProvider, fake: FakeGemini
) -> None:
    """Recent phone cameras write Ultra HDR photos with an MPF block (Pillow reads them as "MPO"): the bot's own
    check took one, and Gemini's refused it as "not a readable PNG, JPEG or WebP image"."""
    photo, gain_map = Image.effect_noise((96, 64), 40).convert("RGB"), Image.new("RGB", (48, 32), "gray")
    out = io.BytesIO()
    photo.save(out, "MPO", save_all=True, append_images=[gain_map])
    data = out.getvalue() + video(200_000, 5)
    await provider.submit(req(reference_images=(provider_ref(fake, "PXL_HDR.jpg", data, "image/jpeg"),)))
    (call,) = fake.jobs.values()
    ((mime, sent),) = call.references
    assert mime == "image/jpeg" and data.startswith(sent) and b"ftypmp42" not in sent
