"""ReX's search and extraction on a synthetic numpy model (no engine, no OpenVINO)."""
from __future__ import annotations

import numpy as np
import pytest

from explain_plugin.methods.rex import extract as ex
from explain_plugin.methods.rex.boxes import masks_of, split, splittable
from explain_plugin.methods.rex.search import (
    IterationResult, Judge, SearchConfig, drive, iteration, multiplex, rank_of,
)
from rex_synthetic import RegionModel

H, W = 60, 80
QUADS = [(0, 30, 0, 40), (0, 30, 40, 80), (30, 60, 0, 40), (30, 60, 40, 80)]
SPOT = (10, 20, 50, 60)  # a small region inside quadrant 1


def model(target=4, weights=(1, 1, 1, 1, 3)):
    return RegionModel((H, W), QUADS + [SPOT], weights, [target])


def judge_for(m, label, cf=0.0):
    full = m(np.ones((1, H, W), bool))
    return Judge(0, float(full.scores[0, 0]), label, rank_of(full.classes[0], label), cf)


def search(m, judge, iters=20, seed=0, **config):
    results = [IterationResult() for _ in range(iters)]
    seqs = np.random.SeedSequence(seed).spawn(iters)
    drive([iteration(H, W, judge, np.random.default_rng(s), SearchConfig(**config), r)
           for s, r in zip(seqs, results)], m)
    return sum(r.map(H, W) for r in results), results


def region(y0, y1, x0, x1):
    out = np.zeros((H, W), bool)
    out[y0:y1, x0:x1] = True
    return out


def test_split_covers_the_box_with_four_nonempty_children():
    rng = np.random.default_rng(0)
    boxes = np.array([[0, 7, 3, 12, 0], [5, 9, 0, 2, 2]])
    for dist in ("uniform", "betabinom"):
        kids = split(boxes, rng, dist)
        for box, four in zip(boxes, kids):
            masks = masks_of([four[i:i + 1] for i in range(4)], 12, 12)
            assert masks.sum(axis=(1, 2)).min() > 0
            assert (masks.sum(axis=0) == region(*box[:4])[:12, :12]).all()
            assert (four[:, 4] == box[4] + 1).all()
    assert splittable(np.array([[0, 1, 0, 100, 0], [0, 10, 0, 10, 10], [0, 10, 0, 10, 3]]),
                      10, 10).tolist() == [False, False, True]


def test_responsibility_lights_up_the_region_the_class_needs():
    m = model()
    rmap, results = search(m, judge_for(m, 4))
    inside = rmap[region(*SPOT)]
    assert inside.min() > rmap[~region(*QUADS[1])].max()
    assert all(r.done and r.passing > 0 for r in results)
    assert max(r.depth for r in results) >= 3


def test_pass_rule_for_a_class_that_is_not_the_top_one():
    # Class 2 (bottom-left quadrant) ranks 2nd on the whole image: a mutant passes when it
    # still ranks no lower, so its explanation is found inside its own quadrant.
    m = RegionModel((H, W), QUADS, [1, 1, 2, 3], [2])
    judge = judge_for(m, 2)
    assert judge.rank0 == 1
    rmap, _ = search(m, judge)
    assert rmap[region(*QUADS[2])].mean() > 2 * rmap[~region(*QUADS[2])].mean()
    found = ex.Found()
    drive([ex.prefix_search(ex.ranking(rmap), (H, W), judge, H * W, found)], m)
    assert found.mask is not None and found.mask.any()
    assert found.mask[region(*QUADS[2])].sum() == found.mask.sum()


def test_same_seed_same_map_other_seed_other_map():
    m = model()
    a, _ = search(m, judge_for(m, 4), iters=5, seed=3)
    b, _ = search(m, judge_for(m, 4), iters=5, seed=3)
    c, _ = search(m, judge_for(m, 4), iters=5, seed=4)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_limits_stop_the_search():
    m = model()
    _, deep = search(m, judge_for(m, 4), iters=3)
    _, shallow = search(m, judge_for(m, 4), iters=3, tree_depth=2)
    _, limited = search(m, judge_for(m, 4), iters=3, search_limit=5)
    assert max(r.depth for r in shallow) == 2 < max(r.depth for r in deep)
    assert all(r.evaluations <= 14 for r in limited)


def test_confidence_filter_needs_more_of_the_region():
    m = model()
    rmap, _ = search(m, judge_for(m, 4, cf=0.5))
    found = ex.Found()
    judge = judge_for(m, 4, cf=0.5)
    drive([ex.prefix_search(ex.ranking(rmap), (H, W), judge, H * W, found, resolution=1)], m)
    kept = found.mask[region(*SPOT)].sum()
    assert 50 <= kept <= 60  # score >= half the whole image's: half the spot, +resolution


def test_global_is_minimal_and_sufficient_and_batched():
    m = model()
    judge = judge_for(m, 4)
    rmap, _ = search(m, judge)
    found = ex.Found()
    calls = m.calls
    drive([ex.prefix_search(ex.ranking(rmap), (H, W), judge, H * W, found, resolution=1)], m)
    assert found.mask is not None
    assert found.mask.sum() <= 3 and region(*SPOT)[found.mask].all()
    assert found.evaluations == m.calls - calls <= 64
    assert judge(m(found.mask[None]))[0]


def test_spatial_grows_a_disc_at_the_peak():
    m = model()
    judge = judge_for(m, 4)
    rmap, _ = search(m, judge)
    found = ex.Found()
    drive([ex.spatial_search(rmap, judge, found, radius=5)], m)
    assert found.mask is not None and region(*SPOT)[found.mask].all()


def test_contrastive_is_sufficient_and_necessary():
    m = model()
    judge = judge_for(m, 4)
    rmap, _ = search(m, judge)
    found = ex.Found()
    drive([ex.prefix_search(ex.ranking(rmap), (H, W), judge, H * W, found,
                            contrastive=True, resolution=1)], m)
    mask = found.mask
    assert judge(m(mask[None]))[0] and not judge(m(~mask[None]))[0]
    # removing the spot's score below a quadrant's takes > 2/3 of the spot
    assert 67 <= mask[region(*SPOT)].sum() and mask.sum() <= 100


def test_multi_finds_distinct_explanations():
    # Two disjoint spots each suffice for class 4 (its logit reads either).
    regions = QUADS + [(5, 15, 5, 15)]
    m = RegionModel((H, W), regions, [1, 1, 1, 1, 3], [4])
    m.regions[4][40:50, 60:70] = m.regions[4][5:15, 5:15].max()
    judge = judge_for(m, 4)
    rmap, _ = search(m, judge)
    peaks = ex.peaks(rmap, 4, radius=8)
    parts = [ex.Found() for _ in peaks]
    drive([ex.spatial_search(rmap, judge, f, centre=c, radius=8, expansions=4)
           for c, f in zip(peaks, parts)], m)
    keep = ex.distinct([f.mask for f in parts], 3, 0.0)
    assert len(keep) >= 2
    spots = [region(5, 15, 5, 15), region(40, 50, 60, 70)]
    hit = {next(i for i, s in enumerate(spots) if s[parts[k].mask].all()) for k in keep[:2]}
    assert hit == {0, 1}


def test_a_model_that_ignores_its_input_passes_everything():
    m = RegionModel((H, W), QUADS, [0, 0, 0, 0], [0])
    m.weights = np.zeros(4, np.float32)
    const = lambda masks: type(m(masks))(np.ones((len(masks), 1), np.float32),
                                         np.ones((len(masks), 1), bool), None)
    judge = Judge(0, 1.0, None, None, 0.0)
    assert judge(const(np.zeros((1, H, W), bool)))[0]  # the method's probe: nothing to explain


def test_multiplex_runs_many_producers_in_one_batch():
    m = model()
    judge = judge_for(m, 4)
    results = [IterationResult() for _ in range(6)]
    gens = [iteration(H, W, judge, np.random.default_rng(i), SearchConfig(), r)
            for i, r in enumerate(results)]
    mux = multiplex(gens, width=3)
    sizes = []
    masks = next(mux)
    try:
        while True:
            sizes.append(len(masks))
            masks = mux.send(m(masks))
    except StopIteration:
        pass
    assert all(r.done for r in results)
    assert max(sizes) > 4 and sum(sizes) == sum(r.evaluations for r in results)
