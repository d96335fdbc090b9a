"""The evaluation engine: closed-loop producers, open-loop streams, full batches, counts."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from explain_plugin.errors import CliError
from explain_plugin.launchers.base import Launcher, Pending
from explain_plugin.methods.engine import Evaluator
from explain_plugin.methods.occlusion import Occlusion
from explain_plugin.methods.scoring import Answer
from explain_plugin.methods.view import View


class _Later(Pending):
    def __init__(self, result, delay):
        self._result, self._event = result, threading.Event()
        threading.Timer(delay, self._event.set).start()

    def ready(self):
        return self._event.is_set()

    def wait(self):
        self._event.wait()

    def result(self):
        self._event.wait()
        return self._result


class FakeLauncher(Launcher):
    """Each image's 'annotation' is its pixel sum; batches finish after a short delay.
    Records every submitted batch's size and the most batches in flight at once."""

    NAME = "fake"

    def __init__(self, batch=4, requests=2, delay=0.002):
        self._batch, self._requests, self.delay = batch, requests, delay
        self.sizes, self.handles, self.max_inflight = [], [], 0

    @classmethod
    def build_cmdline_parser(cls, **kwargs):
        raise NotImplementedError

    @property
    def input_size(self):
        return (4, 4)

    @property
    def batch_size(self):
        return self._batch

    @property
    def requests(self):
        return self._requests

    def padding(self, count):
        return -count % self._batch

    def stream(self, batches):
        for b in batches:
            yield [[float(np.asarray(im).sum())] for im in b]

    def submit(self, images):
        self.sizes.append(len(images))
        self.handles = [h for h in self.handles if not h.ready()]
        handle = _Later([[float(im.sum())] for im in images], self.delay)
        self.handles.append(handle)
        self.max_inflight = max(self.max_inflight, len(self.handles))
        return handle


class SumScorer:
    """Score = pixel sum / 48 (the fraction of kept pixels of an all-ones 4x4x3 image)."""

    class_ids = np.array([0])

    def __init__(self, fail_at=None):
        self.fail_at, self.calls = fail_at, 0

    def answer(self, anns):
        self.calls += 1
        if self.fail_at is not None and self.calls >= self.fail_at:
            raise CliError("the model gave a non-finite score")
        s = np.array([a[0] for a in anns], np.float32)[:, None] / 48
        return Answer(s, s > 0.5)


def make(batch=4, requests=2, scorer=None):
    launcher = FakeLauncher(batch, requests)
    view = View(np.ones((4, 4, 3), np.float32), (4, 4))
    return launcher, Evaluator(launcher, view, scorer or SumScorer(),
                               Occlusion(view.pixels, np.zeros((1, 1, 3), np.float32)))


def masks_keeping(counts):
    """[K, 4, 4] masks keeping the first c pixels of each (in raster order)."""
    flat = np.arange(16)[None] < np.asarray(counts)[:, None]
    return flat.reshape(-1, 4, 4)


def test_closed_loop_producers_get_their_own_answers_in_full_batches():
    launcher, ev = make()

    def bisect(target):  # a dependent search: each level waits for the previous answer
        lo, hi, levels = 0, 16, 0
        while hi - lo > 1:
            mid = (lo + hi) // 2
            answer = yield masks_keeping([mid, lo, hi])  # 3 masks: never a full batch alone
            assert np.allclose(answer.scores[:, 0], np.array([mid, lo, hi]) / 16)
            lo, hi = (mid, hi) if mid < target else (lo, mid)
            levels += 1
        return hi, levels

    results = ev.run([bisect(t) for t in (3, 7, 11, 15)], purpose="search")
    assert results == [(3, 4), (7, 4), (11, 4), (15, 4)]
    assert ev.counts == {"search": 4 * 4 * 3}
    assert sum(launcher.sizes) == 48 + ev.padding
    # masks of different producers share batches: mostly full ones
    assert launcher.sizes.count(4) >= 8 and ev.padding <= 4


def test_many_producers_start_as_the_queue_drains():
    """40 producers of 6 masks each: started in order while fewer than a few batches
    are queued, not all at once (each would hold its masks until answered)."""
    launcher, ev = make(batch=4, requests=2)
    live, most = set(), [0]

    def one(k):
        live.add(k)
        most[0] = max(most[0], len(live))
        answer = yield masks_keeping([k % 17] * 6)
        live.discard(k)
        return float(answer.scores[0, 0])

    results = ev.run([one(k) for k in range(40)], purpose="metrics")
    assert results == [pytest.approx((k % 17) / 16) for k in range(40)]
    assert ev.counts == {"metrics": 240} and ev.padding == 0
    # a budget of (requests + 2) batches = 16 queued masks, plus the batches in flight
    assert 2 <= most[0] <= 8
    assert all(s == 4 for s in launcher.sizes)


def test_open_loop_keeps_many_batches_in_flight_and_answers_in_order():
    launcher, ev = make(batch=4, requests=2)
    chunks = [(i, masks_keeping([i % 17] * (1 + i % 5))) for i in range(40)]
    seen = [(tag, answer.scores[:, 0].copy()) for tag, answer in ev.imap(iter(chunks), "rise")]
    assert [tag for tag, _ in seen] == list(range(40))
    for tag, scores in seen:
        np.testing.assert_allclose(scores, np.full(1 + tag % 5, (tag % 17) / 16))
    total = sum(1 + i % 5 for i in range(40))
    assert ev.counts == {"rise": total}
    # chunks of 1..5 masks are packed: only the last batch may be partial
    assert all(s == 4 for s in launcher.sizes[:-1]) and ev.padding == (-total) % 4
    assert launcher.max_inflight >= 2


def test_purposes_are_counted_apart_and_padding_is_not_counted():
    _, ev = make(batch=8)
    ev.evaluate(masks_keeping([16] * 3), purpose="clean")
    ev.evaluate(masks_keeping([4] * 10), purpose="metrics")
    assert ev.counts == {"clean": 3, "metrics": 10}
    assert ev.padding == 5 + 6 and ev.evaluations == 13


def test_per_producer_occlusion():
    _, ev = make()
    grey = Occlusion(ev.view.pixels, np.full((1, 1, 3), 0.5, np.float32))

    def one(k):
        answer = yield masks_keeping([k])
        return float(answer.scores[0, 0])

    zero, half = ev.run([one(8), one(8)], occlusion=[ev.occlusion, grey])
    assert zero == pytest.approx(0.5) and half == pytest.approx(0.75)


def test_cli_error_propagates_after_in_flight_requests_finish():
    launcher, ev = make(scorer=SumScorer(fail_at=3))
    with pytest.raises(CliError, match="non-finite"):
        for _ in ev.imap(((i, masks_keeping([8] * 4)) for i in range(50)), "rise"):
            pass
    time.sleep(0.01)
    assert all(h.ready() for h in launcher.handles)


def test_default_submit_works_on_any_launcher():
    class Plain(FakeLauncher):
        submit = Launcher.submit

    launcher = Plain()
    view = View(np.ones((4, 4, 3), np.float32), (4, 4))
    ev = Evaluator(launcher, view, SumScorer(), Occlusion.of(view.pixels, "0"))
    answers = [a.scores[:, 0] for _, a in ev.imap([(0, masks_keeping([4, 8])), (1, masks_keeping([16]))])]
    np.testing.assert_allclose(np.concatenate(answers), [0.25, 0.5, 1.0])


def test_real_launcher_through_the_engine(known_models):
    from explain_plugin.launchers.openvino import OpenVinoLauncher
    from explain_plugin.methods.scoring import ClassScorer
    from explain_plugin.methods.view import view_of

    xml = known_models["classifier"]
    launcher = OpenVinoLauncher(description=str(xml), interpreter=str(known_models["classifier_0x"]))
    image = np.full((48, 64, 3), 100, np.uint8)
    view = view_of(launcher, image)
    ev = Evaluator(launcher, view, ClassScorer(np.arange(4), 4), Occlusion.of(view.pixels, "0"))
    quadrant = np.zeros((4, 48, 64), np.float32)
    for k, (y0, y1, x0, x1) in enumerate([(0, 24, 0, 32), (0, 24, 32, 64),
                                          (24, 48, 0, 32), (24, 48, 32, 64)]):
        quadrant[k, y0:y1, x0:x1] = 1
    answer = ev.evaluate(quadrant)
    # keeping only quadrant k leaves class k the top class (its hit), and only that one
    assert (answer.hit == np.eye(4, dtype=bool)).all()
    assert answer.classes.shape == (4, 4) and ev.counts == {"explain": 4}


def test_a_closed_loop_producer_joins_an_open_loop_and_shares_its_batches():
    launcher, ev = make(batch=4, requests=2)

    def bisect(target):
        lo, hi, levels = 0, 16, 0
        while hi - lo > 1:
            mid = (lo + hi) // 2
            answer = yield masks_keeping([mid])  # one mask a level: alone, never a full batch
            assert answer.scores[0, 0] == pytest.approx(mid / 16)
            lo, hi = (mid, hi) if mid < target else (lo, mid)
            levels += 1
        return hi, levels

    loop = ev.imap(((i, masks_keeping([i % 17] * 3)) for i in range(30)), "rise")
    tags = []
    for tag, answer in loop:
        tags.append(tag)
        if tag == 2:
            loop.join(bisect(11), "search")
    assert tags == list(range(30))
    assert loop.results == [(11, 4)]  # the loop ran until the joined search returned
    assert ev.counts == {"rise": 90, "search": 4}
    # the search's single masks rode in the sampling's batches: at most the last is short
    assert all(s == 4 for s in launcher.sizes[:-1]) and sum(launcher.sizes) == 94
