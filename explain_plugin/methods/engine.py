"""The closed-loop evaluation engine: methods submit masks, answers come back as they arrive.

API (one ``Evaluator`` per image)::

    ev = Evaluator(launcher, view, scorer, occlusion)   # view: view.View; scorer: scoring.*Scorer
    # closed loop: producers are generators; several run at once, the device stays busy
    def producer():
        answer = yield masks            # float32 or bool [K, vh, vw], 1 = keep the pixel
        ...                             # answer: scoring.Answer for exactly those K masks
        return result
    results = ev.run([producer(), producer()], purpose="rex")   # their return values, in order
    # open loop: masks known ahead (RISE); many batches in flight, answers in order
    for tag, answer in ev.imap(((tag, masks) for ...), purpose="rise"):
        ...
    loop = ev.imap(source); loop.join(producer(), purpose="refine")  # both in one session
    ev.counts    # {"rise": 1000, "metrics": 80}: masks evaluated per purpose, padding excluded
    ev.padding   # copies inferred only to fill a static batch (launcher.padding; never masks)

A method on the core (see methods/rise/method.py, ~40 lines of explain())::

    view = view.view_of(launcher, image)                      # float32, launcher's scale
    occlusion = occlusion.Occlusion.of(view.pixels, "0" | "mean" | "blur", cell)
    scorer, targets = targets.resolve(launcher, view, targets.parse_targets(spec, labels),
                                      conf=..., nms=..., iou=...)   # classes or boxes
    ev = Evaluator(launcher, view, scorer, occlusion)
    ...                                                       # run / imap
    snap = Snapshot(normalize.normalize_maps(raw), targets, used, final=True,
                    evaluations=dict(ev.counts), notes=[...])
    snap.metrics = metrics.evaluate_maps(ev, snap.maps, targets, item=item)  # purpose "metrics"

Launchers: ``launcher.submit(images) -> Pending`` (``ready()``, ``wait()``,
``result()``); the base class builds it on ``stream``, OpenVINO returns at once.

K may be anything >= 1: the engine packs the masks of every producer into full
launcher batches (a batch may hold the tail of one request and the head of the
next), blends them with the producer's ``Occlusion`` right before submitting, and
splits the answers back. A partial batch goes out only when no producer can add
masks without an answer and the device has a free request, so dependent levels
(ReX) overlap with other producers' work and padding happens only at the very end.
Exceptions (e.g. a ``CliError`` for a non-finite score) propagate; requests still
in flight are waited for first.
"""
from __future__ import annotations

from collections import deque
from typing import Any, Callable, Generator, Iterable, Iterator, Sequence

import numpy as np

from explain_plugin.methods.occlusion import Occlusion
from explain_plugin.methods.scoring import Answer

Producer = Generator[np.ndarray, Answer, Any]


class Evaluator:
    """Evaluates masked versions of one image (``view``) through ``launcher``."""

    def __init__(self, launcher, view, scorer, occlusion: Occlusion):
        self.launcher, self.view, self.scorer, self.occlusion = launcher, view, scorer, occlusion
        self.counts: dict[str, int] = {}
        self.padding = 0
        self.batch = max(1, int(getattr(launcher, "batch_size", 1) or 1))
        self.requests = max(1, int(getattr(launcher, "requests", 1) or 1))
        # Only this window of a masked view reaches the model (the launcher crops the
        # rest away): blend just that, at the model's input size ...
        window = getattr(launcher, "model_window", None)
        self.window = window(view.hw) if window else None
        # ... and as the model's input itself when it is NCHW (contiguous planes)
        self.channels_first = self.window is not None and \
            getattr(launcher, "window_layout", "NHWC") == "NCHW" and view.pixels.shape[2] == 3
        # uint8 when the launcher reads images as 8-bit anyway: blended straight into it
        self.dtype = np.dtype(getattr(launcher, "masked_dtype", np.float32))
        self._windowed: dict[int, tuple[Occlusion, Occlusion]] = {}

    def blender(self, occlusion: Occlusion) -> Occlusion:
        """``occlusion`` restricted to the model window (itself without one)."""
        if self.window is None:
            return occlusion
        cached = self._windowed.get(id(occlusion))
        if cached is None or cached[0] is not occlusion:
            cached = self._windowed[id(occlusion)] = (occlusion, occlusion.window(*self.window))
        return cached[1]

    @property
    def evaluations(self) -> int:
        return sum(self.counts.values())

    def run(self, producers: Iterable[Producer], purpose: str = "explain",
            occlusion: Occlusion | Sequence[Occlusion] | None = None,
            on_answer: Callable[[int], None] | None = None) -> list[Any]:
        """Run closed-loop producers together; their return values, in order.

        ``occlusion``: one for all producers, or one per producer (default: the evaluator's).
        """
        producers = list(producers)
        if occlusion is None or isinstance(occlusion, Occlusion):
            occlusion = [occlusion or self.occlusion] * len(producers)
        session = _Session(self, on_answer)
        clients = [session.add_closed(p, purpose, o) for p, o in zip(producers, occlusion)]
        with session:
            session.start_closed()
            while not all(c.finished for c in clients):
                session.step()
        return [c.result for c in clients]

    def imap(self, source: Iterable[tuple[Any, np.ndarray]], purpose: str = "explain",
             occlusion: Occlusion | None = None) -> "OpenLoop":
        """Open loop: ``(tag, masks)`` pulled ahead of the answers; ``(tag, answer)`` in order.
        Closed-loop producers may ``join`` the same batches while it runs (``OpenLoop``)."""
        return OpenLoop(self, source, purpose, occlusion or self.occlusion)

    def evaluate(self, masks: np.ndarray, purpose: str = "explain",
                 occlusion: Occlusion | None = None) -> Answer:
        """One set of masks, answered (a one-step closed loop)."""
        def once():
            return (yield masks)
        return self.run([once()], purpose, occlusion)[0]


class OpenLoop:
    """Iterator over an open-loop source's ``(tag, answer)`` pairs, in order.

    ``join(producer)`` adds a closed-loop producer to the same session: its masks
    fill the batches the source leaves and ride along with the source's, so a
    dependent search overlaps the tail of the sampling instead of waiting on the
    device one step at a time. Iteration ends when the source is answered and every
    joined producer has returned; ``results`` holds their return values.
    """

    def __init__(self, ev: Evaluator, source, purpose: str, occlusion: Occlusion):
        self._ev = ev
        self._session = _Session(ev, None)
        self._client = self._session.add_open(source, purpose, occlusion)
        self._joined: list[_Client] = []
        self._gen = self._iterate()

    def join(self, producer: Producer, purpose: str, occlusion: Occlusion | None = None) -> None:
        self._joined.append(self._session.add_closed(producer, purpose,
                                                     occlusion or self._ev.occlusion))

    @property
    def results(self) -> list[Any]:
        return [c.result for c in self._joined]

    def _iterate(self) -> Iterator[tuple[Any, Answer]]:
        client, session = self._client, self._session
        with session:
            while True:
                if client.out:
                    yield client.out.popleft()
                elif client.exhausted and not client.outstanding and \
                        all(c.finished for c in self._joined):
                    return
                else:
                    session.step()

    def __iter__(self) -> "OpenLoop":
        return self

    def __next__(self) -> tuple[Any, Answer]:
        return next(self._gen)

    def close(self) -> None:
        self._gen.close()


class _Request:
    __slots__ = ("client", "tag", "masks", "size", "parts", "filled")

    def __init__(self, client, tag, masks):
        self.client, self.tag, self.masks = client, tag, masks
        self.size, self.parts, self.filled = len(masks), [], 0


class _Client:
    def __init__(self, purpose: str, occlusion: Occlusion):
        self.purpose, self.occlusion = purpose, occlusion
        self.finished, self.result = False, None
        self.outstanding = 0  # masks queued or in flight
        # closed loop
        self.gen: Producer | None = None
        self.waiting = False
        # open loop
        self.source: Iterator | None = None
        self.exhausted = False
        self.out: deque = deque()


class _Session:
    """One call's scheduler: a queue of unsent mask rows and the batches in flight."""

    def __init__(self, ev: Evaluator, on_answer):
        self.ev, self.on_answer = ev, on_answer
        self.queue: deque[list] = deque()  # [request, first unsent row]
        self.queued = 0
        self.inflight: deque[tuple[Any, list, int]] = deque()  # (handle, pieces, rows)
        self.open: list[_Client] = []
        self.unstarted: deque[_Client] = deque()  # closed-loop producers not yet advanced
        # the device's requests, plus one batch ready to start the moment one frees
        self.max_inflight = self.ev.requests + 1
        # masks queued ahead of the device: enough to keep every batch full
        self.budget = (self.max_inflight + 1) * self.ev.batch

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        while self.inflight:  # closed early or failed: requests still read our inputs
            handle = self.inflight.popleft()[0]
            try:
                handle.wait()
            except Exception:  # noqa: BLE001 - the first error is the one to report
                pass

    # producers --------------------------------------------------------------
    def add_closed(self, gen: Producer, purpose: str, occlusion: Occlusion) -> _Client:
        """A closed-loop producer, started by ``start_closed`` once the queue has room."""
        client = _Client(purpose, occlusion)
        client.gen = gen
        self.unstarted.append(client)
        return client

    def start_closed(self) -> bool:
        """Start waiting producers (in order) while fewer than ``budget`` masks are queued:
        many producers (a metric curve per target, ReX's iterations) then never hold
        all their masks at once. Whether any started."""
        started = False
        while self.unstarted and self.queued < self.budget:
            self._advance(self.unstarted.popleft(), None, first=True)
            started = True
        return started

    def add_open(self, source, purpose: str, occlusion: Occlusion) -> _Client:
        client = _Client(purpose, occlusion)
        client.source = iter(source)
        self.open.append(client)
        return client

    def _advance(self, client: _Client, answer: Answer | None, first: bool = False) -> None:
        try:
            masks = next(client.gen) if first else client.gen.send(answer)
        except StopIteration as stop:
            client.finished, client.result, client.waiting = True, stop.value, False
            return
        self._enqueue(_Request(client, None, _as_masks(masks)))
        client.waiting = True

    def _enqueue(self, request: _Request) -> None:
        if request.size == 0:
            self._complete(request, [])
            return
        self.queue.append([request, 0])
        self.queued += request.size
        request.client.outstanding += request.size

    def _pull(self) -> None:
        for client in self.open:
            while not client.exhausted and client.outstanding < self.budget:
                try:
                    tag, masks = next(client.source)
                except StopIteration:
                    client.exhausted = True
                    break
                self._enqueue(_Request(client, tag, _as_masks(masks)))

    def _can_grow(self) -> bool:
        """Whether some producer could add masks without waiting for an answer."""
        return bool(self.unstarted) or any(not c.exhausted for c in self.open)

    # batches ----------------------------------------------------------------
    def step(self) -> None:
        """Make progress: deliver finished batches, submit new ones, or wait for one."""
        progressed = False
        while self.inflight and self.inflight[0][0].ready():
            self._collect()
            progressed = True
        progressed |= self.start_closed()
        self._pull()
        while self.queued >= self.ev.batch and len(self.inflight) < self.max_inflight:
            self._launch(self.ev.batch)
            progressed = True
        if progressed:
            return
        if self.queued and (not self.inflight or (
                len(self.inflight) < self.ev.requests and not self._can_grow())):
            self._launch(self.queued)
        elif self.inflight:
            self._collect()
        elif not self.queued:
            raise RuntimeError("engine: nothing to evaluate and no producer waiting")

    def _launch(self, rows: int) -> None:
        ev = self.ev
        rows = min(rows, ev.batch, self.queued)
        pieces, taken = [], 0
        while taken < rows:
            entry = self.queue[0]
            request, start = entry
            stop = min(request.size, start + rows - taken)
            pieces.append((request, start, stop))
            taken += stop - start
            if stop == request.size:
                self.queue.popleft()
            else:
                entry[1] = stop
        self.queued -= rows
        vh, vw = ev.view.hw
        channels = ev.view.pixels.shape[2]
        cut = (slice(None),) if ev.window is None else (slice(None), *ev.window)
        if ev.window is not None:
            vh, vw = (s.stop - s.start for s in ev.window)
        first = ev.channels_first
        images = np.empty((rows, channels, vh, vw) if first else (rows, vh, vw, channels), ev.dtype)
        at = 0
        for request, start, stop in pieces:
            ev.blender(request.client.occlusion)(request.masks[start:stop][cut],
                                                 out=images[at:at + stop - start],
                                                 channels_first=first)
            at += stop - start
            if stop == request.size:
                request.masks = None  # blended: the masks are no longer needed
            ev.counts[request.client.purpose] = ev.counts.get(request.client.purpose, 0) + stop - start
        ev.padding += ev.launcher.padding(rows)
        self.inflight.append((ev.launcher.submit(images), pieces, rows))

    def _collect(self) -> None:
        handle, pieces, rows = self.inflight.popleft()
        answer = self.ev.scorer.answer(handle.result())
        at = 0
        for request, start, stop in pieces:
            request.parts.append(answer.rows(at, at + stop - start))
            at += stop - start
            request.filled += stop - start
            request.client.outstanding -= stop - start
            if request.filled == request.size:
                self._complete(request, request.parts)
        if self.on_answer is not None:
            self.on_answer(rows)

    def _complete(self, request: _Request, parts: list[Answer]) -> None:
        client = request.client
        answer = Answer.join(parts) if parts else _empty_answer(self.ev)
        if client.gen is not None:
            client.waiting = False
            self._advance(client, answer)
        else:
            client.out.append((request.tag, answer))


def _as_masks(masks) -> np.ndarray:
    masks = np.asarray(masks)
    if masks.ndim == 2:
        masks = masks[None]
    if masks.ndim != 3:
        raise ValueError(f"engine: masks must be [K, h, w], got shape {masks.shape}")
    return masks


def _empty_answer(ev: Evaluator) -> Answer:
    t = len(getattr(ev.scorer, "class_ids", getattr(getattr(ev.scorer, "targets", None), "labels", [])))
    return Answer(np.zeros((0, t), np.float32), np.zeros((0, t), bool))
