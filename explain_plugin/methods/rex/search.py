"""ReX's causal responsibility search, as engine producers (``answer = yield masks``).

One producer is one iteration (one random partition tree) for one target:

1. A *job* is a set of boxes that, kept alone (everything else occluded), gives
   the target: ``static`` boxes stay whole, each ``active`` box is refined.
   The first job is the whole image.
2. For each active box (the job's other boxes kept as they are) the box splits
   into 4 children at a random point, and mutants keep the static boxes plus a
   non-empty proper subset of the children.
3. Subsets are tried top-down: the 4 triples (drop one child), then the pairs
   whose two supersets passed, then the singletons whose three did (a subset of
   a failing mutant is taken to fail: when no triple passes, 4 evaluations
   settle the level instead of ReX's 14). Each minimal passing subset (no
   passing subset of its own) credits its k children, each needed with the
   k - 1 others, with responsibility 1/k. (ReX credits every passing mutant,
   which spreads credit over children that were not needed.)
4. The passing mutants of every active box of every job (ReX keeps the last
   box's only) are ordered by kept area, smallest first; the ``queue_len``
   first become the next jobs, keeping their static boxes (ReX drops them,
   so its next level occludes parts it had found necessary).
5. It stops when nothing passes, at ``tree_depth`` / ``min_box_size``, or once
   ``search_limit`` evaluations are spent (checked before each round of a level;
   the subsets found so far still count).

A mutant passes per ``Judge``: the target is still the model's answer and its
score is >= ``confidence_filter`` x its score on the whole image.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Generator, Iterable, Iterator

import numpy as np

from explain_plugin.methods.rex.boxes import area, masks_of, paint, split, splittable

Producer = Generator[np.ndarray, Any, None]

# The 14 non-empty proper subsets of 4 children, as 4-bit sets, by size.
_SUBSETS = {k: [s for s in range(1, 15) if bin(s).count("1") == k] for k in (1, 2, 3)}
_MEMBERS = {s: [i for i in range(4) if s >> i & 1] for s in range(16)}


@dataclass
class Judge:
    """Whether masked images still give a target.

    Classification: the target ranks no lower than on the whole image (for the
    top-1 class: it is still the strict argmax; for a class ranked r-th, at
    most r - 1 classes score at least as high), read from ``Answer.classes``.
    Detection (or no class rows): ``Answer.hit``. In both, the target's score must
    also be >= ``confidence_filter`` x ``score0`` (when ``score0`` > 0).
    """

    column: int
    score0: float
    label: int | None = None
    rank0: int | None = None
    confidence_filter: float = 0.0

    def __call__(self, answer) -> np.ndarray:
        scores = np.asarray(answer.scores)[:, self.column]
        classes = getattr(answer, "classes", None)
        if self.rank0 is not None and classes is not None:
            classes = np.asarray(classes)
            ahead = (classes >= scores[:, None]).sum(axis=1) - 1  # the target ties itself
            ok = ahead <= self.rank0
        else:
            ok = np.asarray(answer.hit)[:, self.column].astype(bool)
        if self.confidence_filter > 0 and self.score0 > 0:
            ok &= scores >= self.confidence_filter * self.score0
        return ok


def rank_of(classes: np.ndarray, label: int) -> int:
    """How many classes score at least as high as ``label`` (ties count against it)."""
    return int((classes >= classes[label]).sum() - 1)


@dataclass
class SearchConfig:
    tree_depth: int = 10
    min_box_size: int = 10
    queue_len: int | None = 1  # None: all
    search_limit: int | None = None
    distribution: str = "uniform"
    distribution_args: tuple[float, float] = (1.1, 1.1)


@dataclass
class IterationResult:
    """What one iteration found: credited boxes and ReX's run statistics."""

    evaluations: int = 0
    passing: int = 0
    failing: int = 0
    depth: int = 0
    deepest_sizes: list = field(default_factory=list)
    boxes: list = field(default_factory=list)
    credits: list = field(default_factory=list)
    done: bool = False

    def map(self, height: int, width: int) -> np.ndarray:
        """float64 [height, width]: responsibility summed over credited boxes."""
        if not self.boxes:
            return np.zeros((height, width))
        boxes = np.concatenate(self.boxes)
        return paint(np.zeros(len(boxes), int), boxes, 1, height, width,
                     values=np.concatenate(self.credits), dtype=np.float64)[0]

    @property
    def avg_box_size(self) -> float:
        return float(np.mean(self.deepest_sizes)) if self.deepest_sizes else 0.0


def iteration(height: int, width: int, judge: Callable, rng: np.random.Generator,
              config: SearchConfig, result: IterationResult) -> Producer:
    """One random partition tree for one target; fills ``result``."""
    empty = np.zeros((0, 5), np.int64)
    jobs = [(empty, np.array([[0, height, 0, width, 0]], np.int64))]
    while jobs:
        if config.search_limit and result.evaluations >= config.search_limit:
            break
        others, children = [], []  # per task: boxes kept whole, the 4 children of the split box
        for static, active in jobs:
            ok = splittable(active, config.tree_depth, config.min_box_size)
            if not ok.any():
                continue
            kids = split(active[ok], rng, config.distribution, config.distribution_args)
            for j, i in enumerate(np.flatnonzero(ok)):
                others.append(np.concatenate([static, np.delete(active, i, axis=0)]))
                children.append(kids[j])
        if not children:
            break
        passed: list[set[int]] = [{15} for _ in children]  # all 4 children: the job itself
        for size in (3, 2, 1):
            todo = [(t, s) for t in range(len(children)) for s in _SUBSETS[size]
                    if all(s | 1 << i in passed[t] for i in range(4) if not s >> i & 1)]
            if not todo or (config.search_limit and result.evaluations >= config.search_limit):
                break
            kept = [np.concatenate([others[t], children[t][_MEMBERS[s]]]) for t, s in todo]
            answer = yield masks_of(kept, height, width)
            ok = judge(answer)
            result.evaluations += len(todo)
            result.passing += int(ok.sum())
            result.failing += int(len(ok) - ok.sum())
            for (t, s), good in zip(todo, ok):
                if good:
                    passed[t].add(s)
        # Minimal passing subsets: none of their evaluated subsets passes.
        found = [(t, s) for t in range(len(children)) for s in sorted(passed[t] - {15})
                 if not any(q != s and q & s == q for q in passed[t])]
        if not found:
            break
        credited = [children[t][_MEMBERS[s]] for t, s in found]
        result.boxes += credited
        result.credits += [np.full(len(b), 1.0 / len(b)) for b in credited]
        depth = int(max(b[:, 4].max() for b in credited))
        if depth > result.depth:
            result.depth, result.deepest_sizes = depth, []
        if depth == result.depth:
            result.deepest_sizes += [float(a) for b in credited for a in area(b)]
        # Smallest kept area first; ties keep the order they were found in.
        sizes = [area(others[t]).sum() + area(children[t][_MEMBERS[s]]).sum() for t, s in found]
        order = np.argsort(sizes, kind="stable")[: config.queue_len or None]
        jobs = [(others[found[i][0]], children[found[i][0]][_MEMBERS[found[i][1]]])
                for i in order]
    result.done = True


def take(answer, index: slice):
    """The rows ``index`` of an engine answer (any dataclass-like with these fields)."""
    classes = getattr(answer, "classes", None)
    return type(answer)(scores=answer.scores[index], hit=answer.hit[index],
                        classes=None if classes is None else classes[index])


def multiplex(source: Iterable[Producer], width: int,
              more: Callable[[], bool] = lambda: True) -> Producer:
    """One producer running up to ``width`` producers from ``source`` at once: their
    masks go out as one batch, so the engine sees every mutant of a level of many
    iterations together. New producers start as others end, while ``more()``; once
    it is false, the producers still running are closed."""
    source: Iterator[Producer] = iter(source)
    active: list[list] = []

    def refill() -> None:
        while len(active) < width and more():
            gen = next(source, None)
            if gen is None:
                return
            try:
                active.append([gen, next(gen)])
            except StopIteration:
                continue

    refill()
    while active:
        sizes = np.cumsum([0] + [len(m) for _, m in active])
        answer = yield np.concatenate([m for _, m in active])
        still = []
        for (gen, _), a, b in zip(active, sizes[:-1], sizes[1:]):
            try:
                still.append([gen, gen.send(take(answer, slice(a, b)))])
            except StopIteration:
                pass
        active[:] = still
        if not more():  # the rest would be discarded: stop them now
            for gen, _ in active:
                gen.close()
            return
        refill()


def drive(producers: Iterable[Producer], evaluate: Callable[[np.ndarray], Any]) -> int:
    """Run producers to the end with ``evaluate(masks) -> answer`` (no engine: tests and
    simple callers). Returns the number of masks evaluated."""
    mux = multiplex(producers, width=1 << 30)
    used = 0
    try:
        masks = next(mux)
        while True:
            used += len(masks)
            masks = mux.send(evaluate(masks))
    except StopIteration:
        return used
