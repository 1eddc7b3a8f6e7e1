"""Where the reference's allocation-triggered deferred flushes come from (a diagnostic).

    python tests/engine/trace_alloc_races.py evict_high migrc --seeds 0-11   # ~40 s on two cores

For each window of an equivalence case, the reference model runs with hooks on its
free lists and migrc state (from outside: the model is not changed) and reports:
- allocation-triggered flushes by where the tagged page came from: a refill from the
  buddy head, a pop off a list a refill filled with tagged pages ("spread"), a pop off a
  list a kswapd CPU freed it onto ("direct"), or a THP promotion; and how many of them
  came while kswapd ran;
- tagged pages of the deferral's generation at each deferral: on the buddy list, on
  refilled lists, on lists kswapd freed them onto; where they lie on a refilled list and
  on the buddy list; how many earlier kswapd CPUs' lists hold some;
- the share of time kswapd runs, and of it promotions are allowed and a deferral is
  pending; refills and small allocations per second with kswapd running and asleep;
- pcp refills between a deferral and the end of the next flush (kswapd's own, which
  retires it);
- pops of live tagged pages on refilled lists, per page and second, over all time
  (sampled every 20 us) and inside those flush windows.
docs/reference-model.md ("evict_high/migrc: two errors that cancel") quotes them.
"""

from __future__ import annotations

import sys
from multiprocessing import Pool
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import test_equivalence as te  # noqa: E402  (the test's configurations)
import trace_args  # noqa: E402

from sim.reference import memory, migrc_state  # noqa: E402
from sim.reference.migrc_state import mgen_before, mgen_latest  # noqa: E402
from sim.reference.model import Model  # noqa: E402

_SAMPLE_S = 20e-6
_DIRECT, _REFILLED = 1, 2


class Tracer:
    def __init__(self):
        self.reset()

    def reset(self):
        """Fresh counters for the next window (the hooks stay installed)."""
        self.m = None
        self.origin = None
        self.last_src = "pop-direct"
        self.window = None          # (start, refills at start, spread pages at start)
        self.c = dict(refill=0, spread=0, direct=0, thp=0, deferrals=0, at_buddy=0, at_spread=0, at_direct=0,
                      win_refills=0, win_s=0.0, win_page_s=0.0, win_pops=0, pops=0, page_samples=0.0, samples=0,
                      lists=0, lists_head_tagged=0, lists_clean_over=0, lists_tagged=0, lists_span=0,
                      buddy_tagged=0, buddy_cover=0, buddy_span=0, in_burst=0, refill_in_burst=0,
                      old_lists=0, old_heads_tagged=0, old_two=0, b_samples=0, b_allowed=0, b_pending=0, q_pending=0,
                      b_refills=0, q_refills=0, b_allocs=0, q_allocs=0)

    def live(self, g):
        return g != 0 and mgen_before(self.m.state.gen_done, g)

    def spread_pages(self):
        mem = self.m.mem
        return sum(1 for lst in mem.pcp for fr in lst
                   if self.origin[fr] == _REFILLED and self.live(int(mem.tag[fr])))

    def install(self):
        tr = self
        orig_alloc, orig_free = memory.FreeLists.alloc_page, memory.FreeLists.free_page
        orig_large = memory.FreeLists.alloc_large
        orig_add, orig_end = migrc_state.MigrcState.add_pending, migrc_state.MigrcState.rmap_flush_end
        orig_flush = Model.deferred_flush

        def alloc_page(mem, cpu):
            lst = mem.pcp[cpu]
            g_refill = 0
            if tr.m.drv.counting():
                tr.c["b_allocs" if tr.m.kswapd_running else "q_allocs"] += 1
            if not lst and mem.buddy and tr.m.drv.counting():
                tr.c["b_refills" if tr.m.kswapd_running else "q_refills"] += 1
            if not lst and mem.buddy:
                for fr in mem.buddy[-mem.batch:]:
                    g_refill = mgen_latest(g_refill, int(mem.tag[fr]))
                    tr.origin[fr] = _REFILLED
            elif lst and tr.m.drv.counting():
                head = lst[-1]
                if tr.origin[head] == _REFILLED and tr.live(int(mem.tag[head])):
                    tr.c["pops"] += 1
                    tr.c["win_pops"] += tr.window is not None
            frame, mgen = orig_alloc(mem, cpu)
            if g_refill and g_refill == mgen:
                tr.last_src = "refill"
            elif frame is not None:
                tr.last_src = "spread" if tr.origin[frame] == _REFILLED else "direct"
            return frame, mgen

        def alloc_large(mem, n):
            frames, mgen = orig_large(mem, n)
            if frames is not None:
                tr.last_src = "thp"
            return frames, mgen

        def free_page(mem, cpu, frame, gen=0):
            tr.origin[frame] = _DIRECT
            orig_free(mem, cpu, frame, gen)

        def add_pending(state, task, pending):
            g = orig_add(state, task, pending)
            if g and tr.m.drv.counting():
                mem = tr.m.mem
                tr.c["deferrals"] += 1
                n_old = 0
                at_b = [k for k, fr in enumerate(reversed(mem.buddy)) if mem.tag[fr] == g]
                tr.c["at_buddy"] += len(at_b)
                if at_b:
                    tr.c["buddy_tagged"] += 1
                    tr.c["buddy_cover"] += at_b[0]
                    tr.c["buddy_span"] += at_b[-1] - at_b[0] + 1
                for cpu, lst in enumerate(mem.pcp):
                    if cpu == task.cpu:
                        continue            # kswapd's own list, where it frees this batch
                    direct = 0
                    for fr in lst:
                        if mem.tag[fr] == g:
                            tr.c["at_spread" if tr.origin[fr] == _REFILLED else "at_direct"] += 1
                            direct += tr.origin[fr] != _REFILLED
                    if direct:
                        n_old += 1
                        tr.c["old_lists"] += 1
                        tr.c["old_heads_tagged"] += tr.origin[lst[-1]] != _REFILLED and mem.tag[lst[-1]] == g
                    # where a refilled list's tagged pages lie, counted from its head
                    at = [k for k, fr in enumerate(reversed(lst)) if mem.tag[fr] == g and tr.origin[fr] == _REFILLED]
                    if at:
                        tr.c["lists"] += 1
                        tr.c["lists_head_tagged"] += at[0] == 0
                        tr.c["lists_clean_over"] += at[0]
                        tr.c["lists_tagged"] += len(at)
                        tr.c["lists_span"] += at[-1] - at[0] + 1
                tr.c["old_two"] += n_old >= 2
                tr.window = (tr.m.drv.now, mem.refills, tr.spread_pages())
            return g

        def rmap_flush_end(state, batch, now):
            if tr.window is not None:
                t0, r0, pages = tr.window
                tr.window = None
                tr.c["win_refills"] += tr.m.mem.refills - r0
                tr.c["win_s"] += now - t0
                tr.c["win_page_s"] += pages * (now - t0)
            orig_end(state, batch, now)

        def deferred_flush(model, reason):
            if model.drv.counting() and reason == "alloc":
                tr.c[tr.last_src] += 1
                tr.c["in_burst"] += model.kswapd_running
                tr.c["refill_in_burst"] += model.kswapd_running and tr.last_src == "refill"
            orig_flush(model, reason)

        memory.FreeLists.alloc_page, memory.FreeLists.free_page = alloc_page, free_page
        memory.FreeLists.alloc_large = alloc_large
        migrc_state.MigrcState.add_pending, migrc_state.MigrcState.rmap_flush_end = add_pending, rmap_flush_end
        Model.deferred_flush = deferred_flush

    def sample(self):
        if self.m.drv.counting():
            m = self.m
            if m.kswapd_running:
                self.c["b_samples"] += 1
                self.c["b_allowed"] += m.free_for_watermarks() >= m.wmark_high
                self.c["b_pending"] += m.state.ubc.required
            else:
                self.c["q_pending"] += m.state.ubc.required
            self.c["page_samples"] += self.spread_pages()
            self.c["samples"] += 1
        self.m.drv.at(self.m.drv.now + _SAMPLE_S, self.sample)

    def run(self, params, policy, seed):
        self.m = Model(params, policy, seed)
        self.origin = np.zeros(len(self.m.mem.tag), dtype=np.int8)
        self.m.drv.at(self.m.drv.now + _SAMPLE_S, self.sample)
        self.m.drv.run()
        return self.c


def _run_traced(case, policy, seed):
    """One window in a fresh tracer; the hooks are installed once per process."""
    global _CURRENT
    if _CURRENT is None:
        _CURRENT = Tracer()
        _CURRENT.install()
    _CURRENT.reset()
    c = _CURRENT.run(te.CONFIGS[case][0], policy, seed)
    return {k: float(v) for k, v in c.items()}


_CURRENT = None


def main(argv=None):
    case, policy, seeds = trace_args.parse(argv, "0-3")
    tot = {}
    with Pool(2) as pool:
        for c in pool.starmap(_run_traced, [(case, policy, s) for s in seeds], chunksize=1):
            for k, v in c.items():
                tot[k] = tot.get(k, 0.0) + v
    n = len(seeds)
    d = max(tot["deferrals"], 1)
    print(f"per window ({n} windows): flushes by source refill {tot['refill'] / n:.1f}, spread {tot['spread'] / n:.1f}, "
          f"direct {tot['direct'] / n:.1f}, THP promotion {tot['thp'] / n:.1f}; deferrals {d / n:.0f}")
    print(f"while kswapd runs: {tot['in_burst'] / n:.1f} of them a window, "
          f"{tot['refill_in_burst'] / n:.1f} from refills")
    print(f"tagged pages at a deferral: buddy {tot['at_buddy'] / d:.2f}, refilled lists {tot['at_spread'] / d:.2f}, "
          f"kswapd's lists {tot['at_direct'] / d:.2f}")
    print(f"earlier kswapd CPUs' lists holding tagged pages, at a deferral: {tot['old_lists'] / d:.2f}, "
          f"{tot['old_heads_tagged'] / d:.2f} of them with a tagged head; two or more at "
          f"{tot['old_two'] / d:.1%} of them")
    bs, qs = max(tot["b_samples"], 1), max(tot["samples"] - tot["b_samples"], 1)
    print(f"kswapd runs {tot['b_samples'] / max(tot['samples'], 1):.1%} of the time; of it, promotions allowed "
          f"{tot['b_allowed'] / bs:.1%}, a deferral pending {tot['b_pending'] / bs:.1%}; pending while it sleeps "
          f"{tot['q_pending'] / qs:.1%}; refills/s while it runs {tot['b_refills'] / (bs * _SAMPLE_S):.0f}, "
          f"while it sleeps {tot['q_refills'] / (qs * _SAMPLE_S):.0f}; small allocations/s "
          f"{tot['b_allocs'] / (bs * _SAMPLE_S):.0f} and {tot['q_allocs'] / (qs * _SAMPLE_S):.0f}")
    b = max(tot["buddy_tagged"], 1)
    print(f"the buddy list, at a deferral: tagged pages at {tot['buddy_tagged'] / d:.1%} of them, then the first "
          f"{tot['buddy_cover'] / b:.1f} pages down, over {tot['buddy_span'] / b:.1f} places")
    k = max(tot["lists"], 1)
    print(f"a refilled list with tagged pages, at a deferral: {tot['lists_tagged'] / k:.1f} tagged pages over "
          f"{tot['lists_span'] / k:.1f} places, {tot['lists_clean_over'] / k:.1f} clean pages over the first; "
          f"its head tagged at {tot['lists_head_tagged'] / k:.1%} of them")
    print(f"refills inside the flush windows: {tot['win_refills'] / n:.1f} a window "
          f"(windows {tot['win_s'] / d * 1e6:.1f} us on average)")
    print(f"pops per tagged page on refilled lists: {tot['win_pops'] / max(tot['win_page_s'], 1e-12):.0f}/s inside "
          f"the windows ({tot['win_pops']:.0f} pops), "
          f"{tot['pops'] / max(tot['page_samples'] * _SAMPLE_S, 1e-12):.0f}/s over all time ({tot['pops']:.0f} pops)")


if __name__ == "__main__":
    main()
