"""Dynamic batching: concurrent requests share forward passes, bad images fail alone."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import torch

from advsig.errors import ImageTooSmallError
from advsig.kit import Kit
from advsig.serve import Batcher, BusyError, create_app
from advsig.serve.limits import ServeSettings


def _images(n: int, size: int = 64) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return [torch.rand(3, size, size, generator=g) for _ in range(n)]  # (3, size, size) each


def test_concurrent_submissions_share_batches_and_match_unbatched(tiny_kit: Kit):
    images = _images(8)
    expected = tiny_kit.logits(images)  # (8, 9)

    async def run():
        batcher = Batcher(tiny_kit, max_batch=8, max_wait_ms=200)
        await batcher.start()
        try:
            rows = await asyncio.gather(*(batcher.submit([img]) for img in images))
        finally:
            await batcher.stop()
        return [r[0] for r in rows], batcher.stats

    rows, stats = asyncio.run(run())
    assert stats.images == 8 and stats.batches < 8 and stats.largest > 1
    torch.testing.assert_close(torch.stack(rows), expected, atol=1e-4, rtol=1e-4)


def test_a_bad_image_fails_alone(tiny_kit: Kit):
    good, tiny = _images(1)[0], torch.rand(3, 4, 4)  # 4x4 is below the detector's minimum

    async def run():
        batcher = Batcher(tiny_kit, max_batch=4, max_wait_ms=50)
        await batcher.start()
        try:
            return await batcher.submit([good, tiny, good])
        finally:
            await batcher.stop()

    a, bad, c = asyncio.run(run())
    assert isinstance(bad, ImageTooSmallError) and "at least" in str(bad)
    assert a.shape == (1 + tiny_kit.num_bits,) and torch.equal(a, c)


def test_full_queue_is_refused_not_grown(tiny_kit: Kit):
    async def run():
        batcher = Batcher(tiny_kit, max_batch=1, max_wait_ms=0, max_queue=2)
        await batcher.start()
        try:
            with pytest.raises(BusyError, match="queue is full"):
                await batcher.submit(_images(3))
            assert len(await batcher.submit(_images(2))) == 2
        finally:
            await batcher.stop()
        return batcher.stats.busy_rejections

    assert asyncio.run(run()) == 1
    with pytest.raises(ValueError, match="max_batch"):
        Batcher(tiny_kit, max_batch=0)


def test_concurrent_http_requests_are_batched(tiny_kit: Kit, registry, keys, png_bytes):
    settings = ServeSettings(kit_label="tiny", max_wait_ms=200, max_batch=8, fpr=0.01)
    app = create_app(tiny_kit, registry, settings)
    headers = {"Authorization": f"Bearer {keys.detect}"}

    async def run():
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                files = [("images", ("a.png", png_bytes["coffee"], "image/png"))]
                responses = await asyncio.gather(
                    *(client.post("/v1/detect", files=files, headers=headers) for _ in range(6))
                )
                admin = {"Authorization": f"Bearer {keys.admin}"}
                stats = (await client.get("/v1/admin/stats", headers=admin)).json()
        return responses, stats

    responses, stats = asyncio.run(run())
    assert [r.status_code for r in responses] == [200] * 6
    scores = [r.json()["results"][0]["score"] for r in responses]
    assert max(scores) - min(scores) < 1e-4  # batched or not, the same image, the same score
    assert stats["images"] == 6 and stats["largest_batch"] > 1
