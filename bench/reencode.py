"""Time to verify a generated image and, when it is over the upload limit, re-encode it to fit."""

from __future__ import annotations

import time

from bot.images import prepare
from bot.testing.providers import image_size_for, make_png


def main() -> None:
    for resolution, ratio in (("1K", "1:1"), ("2K", "16:9"), ("4K", "1:1"), ("4K", "21:9")):
        data = make_png(*image_size_for({"resolution": resolution, "aspect_ratio": ratio}))
        for limit in (10 * 1024 * 1024, 1024 * 1024, 300 * 1024):
            start = time.perf_counter()
            result = prepare(data, limit=limit, stem="bench")
            took = (time.perf_counter() - start) * 1000
            print(
                f"{resolution:>2} {ratio:>5}  source {len(data) / 1024:8.0f} KiB"
                f"  limit {limit / 1024:6.0f} KiB"
                f"  -> {len(result.data) / 1024:7.0f} KiB {result.width}x{result.height}"
                f"{' (re-encoded)' if result.reencoded else ''}  {took:7.1f} ms"
            )


if __name__ == "__main__":
    main()
