"""Dynamic batching: images from concurrent requests share one detector forward pass.

Why: on CPU and GPU alike, one forward pass over 16 images costs far less than 16 passes over
one. Requests put their images on a bounded asyncio queue; a single worker takes the first image
waiting, gathers more for at most ``max_wait_ms`` (or until ``max_batch``), and runs
``kit.logits`` on them in its own thread so the event loop keeps accepting requests. A full
queue is refused at once (the service answers 503) instead of growing without bound.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import torch

from advsig.errors import AdvsigError
from advsig.kit import Kit

logger = logging.getLogger(__name__)


class BusyError(AdvsigError):
    """The batching queue is full; the client should retry later."""


@dataclass
class _Item:
    image: torch.Tensor  # (3, h, w) at the kit's working resolution
    future: asyncio.Future


@dataclass
class BatchStats:
    """Counters since start: batches run, images through them, the largest batch."""

    batches: int = 0
    images: int = 0
    largest: int = 0
    busy_rejections: int = 0
    compute_s: float = 0.0
    sizes: dict[int, int] = field(default_factory=dict)

    def to_json_dict(self) -> dict:
        mean = self.images / self.batches if self.batches else 0.0
        return {
            "batches": self.batches, "images": self.images, "mean_batch": round(mean, 3),
            "largest_batch": self.largest, "busy_rejections": self.busy_rejections,
            "compute_s": round(self.compute_s, 3),
            "batch_sizes": {str(k): v for k, v in sorted(self.sizes.items())},
        }  # fmt: skip


class Batcher:
    """Collects images into batches for one worker that runs ``kit.logits``.

    ``on_batch(size, seconds)``, if given, is called on the event loop after every forward pass
    (the service's /metrics histograms); it must be quick and must not raise.

    Example:
        >>> batcher = Batcher(kit, max_batch=16, max_wait_ms=10)
        >>> await batcher.start()
        >>> rows = await batcher.submit([img1, img2])   # each (1 + num_bits,) or an exception
    """

    def __init__(
        self,
        kit: Kit,
        *,
        max_batch: int = 16,
        max_wait_ms: float = 10.0,
        max_queue: int = 256,
        on_batch: Callable[[int, float], None] | None = None,
    ) -> None:
        if max_batch < 1 or max_queue < 1 or max_wait_ms < 0:
            raise ValueError(
                f"need max_batch >= 1, max_queue >= 1, max_wait_ms >= 0; got {max_batch}, "
                f"{max_queue}, {max_wait_ms}"
            )
        self.kit = kit
        self.max_batch = max_batch
        self.max_wait_s = max_wait_ms / 1000.0
        self.max_queue = max_queue
        self.stats = BatchStats()
        self.on_batch = on_batch
        self._queue: asyncio.Queue[_Item] | None = None
        self._task: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None

    @property
    def queued(self) -> int:
        return self._queue.qsize() if self._queue is not None else 0

    async def start(self) -> None:
        self._queue = asyncio.Queue(maxsize=self.max_queue)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="advsig-detect")
        self._task = asyncio.create_task(self._worker(), name="advsig-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        while self._queue is not None and not self._queue.empty():
            item = self._queue.get_nowait()
            if not item.future.done():
                item.future.set_exception(BusyError("the service is shutting down"))

    async def submit(self, images: list[torch.Tensor]) -> list[torch.Tensor | Exception]:
        """Detector outputs, one (1 + num_bits,) row per image, or the exception for that image.

        All images of one request are queued or none is: a request that does not fit raises
        :class:`BusyError`.
        """
        if self._queue is None:
            raise RuntimeError("Batcher.start() was not called")
        if self._queue.qsize() + len(images) > self.max_queue:
            self.stats.busy_rejections += 1
            raise BusyError(f"detection queue is full ({self.max_queue} images); retry shortly")
        loop = asyncio.get_running_loop()
        items = [_Item(img, loop.create_future()) for img in images]
        for item in items:
            self._queue.put_nowait(item)
        return list(await asyncio.gather(*(i.future for i in items), return_exceptions=True))

    async def _worker(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            deadline = loop.time() + self.max_wait_s
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                    continue
                except asyncio.QueueEmpty:
                    pass
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), remaining))
                except asyncio.TimeoutError:
                    break
            batch = [i for i in batch if not i.future.done()]  # the client went away
            if not batch:
                continue
            t0 = time.perf_counter()
            outputs = await loop.run_in_executor(
                self._executor, self._run, [i.image for i in batch]
            )
            self._record(len(batch), time.perf_counter() - t0)
            for item, out in zip(batch, outputs):
                if item.future.done():
                    continue
                if isinstance(out, Exception):
                    item.future.set_exception(out)
                else:
                    item.future.set_result(out)

    def _record(self, size: int, seconds: float) -> None:
        s = self.stats
        s.batches += 1
        s.images += size
        s.largest = max(s.largest, size)
        s.compute_s += seconds
        s.sizes[size] = s.sizes.get(size, 0) + 1
        if self.on_batch is not None:
            self.on_batch(size, seconds)

    def _run(self, images: list[torch.Tensor]) -> list[torch.Tensor | Exception]:
        """One forward pass; if it fails, image by image so one bad image fails alone."""
        try:
            return list(self.kit.logits(images, batch_size=len(images)))  # (B, 1 + num_bits)
        except Exception:  # noqa: BLE001 - isolated below, per image
            logger.warning("batch of %d failed; retrying image by image", len(images))
        out: list[torch.Tensor | Exception] = []
        for img in images:
            try:
                out.append(self.kit.logits([img])[0])
            except Exception as exc:  # noqa: BLE001 - reported for this image only
                out.append(exc)
        return out
