"""A JPEG's whole marker structure is walked before anything is decoded: a file of many repeated scans
(each decoded over the whole image, so its decode time grows with their number, not with the file's
size) is refused by probe(), and real JPEGs of every kind an encoder writes still pass, quickly.

Before, probe() read a JPEG only to its first scan and looked for an end marker near the end: a 1.5 MB
file repeating one 14-byte scan 100,000 times passed, and re-encoding it held a worker for 22 s.
"""

from __future__ import annotations

import io

import pytest
from PIL import Image

from bot.errors import DeliveryError, InvalidRequestError
from bot.images import (
    _BLOCK,
    MAX_JPEG_MARKERS,
    MAX_JPEG_SCANS,
    DamagedImageError,
    ImageInfo,
    TooMuchWorkError,
    check_reference,
    prepare,
    probe,
)


def encode(img: Image.Image, fmt: str = "JPEG", **options: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    return buf.getvalue()


def jpeg_segments(data: bytes) -> list[tuple[int, bytes]]:
    """A whole JPEG (as Pillow writes it: no fill bytes) as (marker, bytes) pieces after SOI; a scan's
    piece holds its header and its entropy-coded data, up to the next marker that is not RST0-7."""
    pos, pieces = 2, []
    while True:
        marker = data[pos + 1]
        if marker == 0xD9:
            return [*pieces, (marker, data[pos : pos + 2])]
        end = pos + 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker == 0xDA:
            while data[data.index(b"\xff", end) + 1] in (0x00, *range(0xD0, 0xD8)):
                end = data.index(b"\xff", end) + 2
            end = data.index(b"\xff", end)
        pieces.append((marker, data[pos:end]))
        pos = end


def scan_bomb(repeats: int, size: tuple[int, int] = (4000, 4000)) -> bytes:
    """A valid progressive JPEG (10 scans) followed by its smallest scan (14 bytes) ``repeats`` more
    times: libjpeg decodes every one of them over the whole image (about 0.25 ms each at 16 Mpx)."""
    pieces = jpeg_segments(encode(Image.new("RGB", size, (120, 80, 200)), progressive=True, quality=90))
    smallest = min((piece for marker, piece in pieces if marker == 0xDA), key=len)
    return (
        b"\xff\xd8" + b"".join(piece for marker, piece in pieces if marker != 0xD9) + smallest * repeats + b"\xff\xd9"
    )


def scans_in(data: bytes) -> int:
    return sum(marker == 0xDA for marker, _ in jpeg_segments(data))


# ---- the scan bomb ----------------------------------------------------------------------------------


def test_a_jpeg_of_many_repeated_scans_is_refused_by_probe() -> None:
    bomb = scan_bomb(100_000)  # the reviewer's 1.5 MB file: 22 s of decoding
    with pytest.raises(TooMuchWorkError) as info:
        probe(bomb)
    assert info.value.what == "scans" and f"more than {MAX_JPEG_SCANS} scans" in str(info.value)


def test_the_scan_bound_is_above_any_encoder_and_exact() -> None:
    assert scans_in(scan_bomb(0)) == 10  # libjpeg's progressive script for colour
    at_bound = scan_bomb(MAX_JPEG_SCANS - 10)
    assert scans_in(at_bound) == MAX_JPEG_SCANS
    assert probe(at_bound).width == 4000
    with pytest.raises(TooMuchWorkError):
        probe(scan_bomb(MAX_JPEG_SCANS - 10 + 1))


def test_a_scan_bomb_result_is_refused_before_a_pixel_is_decoded() -> None:
    bomb = scan_bomb(20_000)  # 5 s of decoding on the old code
    with pytest.raises(DeliveryError) as info:
        prepare(bomb, limit=len(bomb) // 2, stem="r")  # over the limit: it would be re-encoded
    assert "built to take far longer to open than any real one" in info.value.user_message
    assert "You were not charged" in info.value.user_message and not info.value.retryable
    assert "more than 100 scans" in (info.value.detail or "")


def test_a_scan_bomb_reference_is_refused_with_a_reason() -> None:
    with pytest.raises(InvalidRequestError) as info:
        check_reference(io.BytesIO(scan_bomb(1_000)), "photo.jpg")
    message = info.value.user_message
    assert message.startswith("`photo.jpg` is a JPEG of more than 100 scans") and "Save it again" in message


def test_a_jpeg_of_endless_marker_segments_is_refused_without_walking_them_all() -> None:
    """Comment segments by the million: Python per marker, in this walk and in Pillow's own header read (the
    old walk took 7.9 s over 64 MiB of them before the first scan)."""
    whole = encode(Image.new("RGB", (64, 64)))
    comments = b"\xff\xfe\x00\x02" * 2_000_000
    for data in (whole[:2] + comments + whole[2:], whole[:-2] + comments + whole[-2:]):  # before, after a scan
        with pytest.raises(TooMuchWorkError) as info:
            probe(data)
        assert f"more than {MAX_JPEG_MARKERS:,} markers" in str(info.value)


def test_scans_hidden_past_the_first_block_are_counted() -> None:
    """The walk goes on past the first scan's 64 KiB block and past restart markers inside scans."""
    noisy = encode(Image.effect_noise((1024, 1024), 80).convert("RGB"), progressive=True, restart_marker_blocks=1)
    pieces = jpeg_segments(noisy)
    assert max(len(piece) for marker, piece in pieces if marker == 0xDA) > 2 * _BLOCK
    assert any(bytes([0xFF, rst]) in noisy for rst in range(0xD0, 0xD8))
    smallest = min((piece for marker, piece in pieces if marker == 0xDA), key=len)
    with pytest.raises(TooMuchWorkError):
        probe(noisy[:-2] + smallest * MAX_JPEG_SCANS + noisy[-2:])


# ---- real JPEGs still pass -------------------------------------------------------------------------


def _exif() -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x8298] = "Canon", "EOS R5", "(c) a member"
    return exif


def _after_app0(data: bytes, extra: bytes) -> bytes:
    """``extra`` inserted after the JPEG's first segment (APP0, JFIF)."""
    end = 4 + int.from_bytes(data[4:6], "big")
    return data[:end] + extra + data[end:]


PHOTO = Image.effect_noise((640, 480), 40).convert("RGB")
REAL = {
    "baseline": encode(PHOTO, quality=90),
    "progressive": encode(PHOTO, quality=90, progressive=True),
    "optimized": encode(PHOTO, quality=90, optimize=True),
    "4:4:4 q100": encode(PHOTO, quality=100, subsampling=0),
    "grayscale progressive": encode(PHOTO.convert("L"), progressive=True),
    "cmyk progressive (18 scans)": encode(PHOTO.convert("CMYK"), progressive=True),
    # A 200 KB ICC profile is written as four APP2 segments.
    "exif and icc": encode(PHOTO, quality=90, exif=_exif(), icc_profile=b"\x00" * 200_000),
    "exif and icc progressive": encode(PHOTO, exif=_exif().tobytes(), icc_profile=b"\x01" * 70_000, progressive=True),
    "restart every block": encode(PHOTO, restart_marker_blocks=1),
    "restart every row progressive": encode(PHOTO, restart_marker_rows=1, progressive=True),
    "padded after the end marker": encode(PHOTO) + b"\x00" * 500,
    "fill bytes before markers": encode(PHOTO)
    .replace(b"\xff\xc4", b"\xff\xff\xff\xc4")
    .replace(b"\xff\xd9", b"\xff" * 3 + b"\xd9"),
    "two frames (MPO)": encode(PHOTO, "MPO", save_all=True, append_images=[PHOTO.rotate(90)]),
    # As Photoshop writes after its APP14 (Pillow's Tests/images/jpeg_ff00_header.jpg): a stray FF 00 00 02
    # between segments, which Pillow and libjpeg skip. The walk refused it as damaged for a while.
    "stray FF 00 between segments": _after_app0(encode(PHOTO, quality=90), b"\xff\x00\x00\x02"),
}


@pytest.mark.parametrize("name", list(REAL))
def test_real_jpegs_pass_and_pillow_agrees(name: str) -> None:
    data = REAL[name]
    assert probe(data).format == "JPEG" and (probe(data).width, probe(data).height) == (640, 480)
    assert check_reference(io.BytesIO(data), "ref.jpg") == ("image/jpeg", 640, 480)
    with Image.open(io.BytesIO(data)) as img:  # what a re-encode decodes: the same image, whole
        img.load()
        assert img.size == (640, 480)
    assert prepare(data, limit=len(data) // 3, stem="r").reencoded


def test_the_restart_markers_are_really_there() -> None:
    for name in ("restart every block", "restart every row progressive"):
        assert sum(REAL[name].count(bytes([0xFF, rst])) for rst in range(0xD0, 0xD8)) > 100, name
    assert scans_in(REAL["cmyk progressive (18 scans)"]) == 18


def test_a_4k_photo_is_walked_to_its_end() -> None:
    """5 MB of noisy scan data, baseline and progressive (about 1.6 ms each here: the walk skips scan data a
    block at a time, never byte by byte in Python)."""
    photo = Image.effect_noise((3840, 2160), 40).convert("RGB")
    for data in (encode(photo, quality=90), encode(photo, quality=90, progressive=True)):
        assert probe(data) == ImageInfo("JPEG", 3840, 2160)


# ---- the walk's edges -------------------------------------------------------------------------------


def _one_scan(entropy: bytes) -> bytes:
    """A baseline JPEG's header and scan header, then ``entropy`` as its entropy-coded data."""
    pieces = jpeg_segments(encode(Image.new("RGB", (64, 64), (1, 2, 3))))
    header = b"".join(piece for marker, piece in pieces if marker not in (0xDA, 0xD9))
    scan = next(piece for marker, piece in pieces if marker == 0xDA)
    return b"\xff\xd8" + header + scan[: 2 + int.from_bytes(scan[2:4], "big")] + entropy


@pytest.mark.parametrize("shift", [-2, -1, 0, 1])
def test_a_marker_split_across_blocks_is_found(shift: int) -> None:
    """The walk reads a block at a time: an FF at a block's last byte may start the marker."""
    start = len(_one_scan(b""))
    filler = b"\x55" * (_BLOCK - start + shift)  # its end falls around the first block's end
    assert probe(_one_scan(filler + b"\xff\xd9")).width == 64
    assert probe(_one_scan(filler + b"\xff\x00\xff\xd3" + b"\xff" * (_BLOCK + 7) + b"\xd9")).width == 64
    with pytest.raises(TooMuchWorkError):
        probe(_one_scan(filler + (b"\xff\xda" + _one_scan(b"")[-12:]) * MAX_JPEG_SCANS + b"\xff\xd9"))


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (_one_scan(b"\x55" * 100), "ends inside a JPEG scan"),
        (_one_scan(b"\x55" * 100 + b"\xff"), "ends inside a JPEG scan"),
        (_one_scan(b"\x55\xff\xd8\xff\xd9"), "starts again"),
        (_one_scan(b"\x55\xff\xc4\x00\x03\x00\x00\xff\xd9"), "no marker at byte"),
        (_one_scan(b"\x55\xff\xd9") + b"\x00" * 2_000, "after its end-of-image marker"),
    ],
    ids=["cut-in-a-scan", "cut-on-an-ff", "soi-inside", "junk-after-a-segment", "long-junk-after-eoi"],
)
def test_broken_walks_are_refused_as_damaged(data: bytes, words: str) -> None:
    with pytest.raises(DamagedImageError) as info:
        probe(data)
    assert words in str(info.value)
