"""Exact self-intersection test of polygon outlines, all polygons at once (used by :mod:`.check_geometry` for
the polygons that fail its star test).

A *sweep on x*: the edges are cut into x-monotone chains, each chain gets an x-range of its own (chains never
overlap after the shift); one global sort and a ``searchsorted`` give, for each edge, the edges of another chain
inside its x-range; only those candidate pairs are tested with exact orientation signs. The number of pairs is
about the number of edges times the number of edges a vertical line crosses (a handful for real outlines; n²/2
at worst for a comb-like polygon).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_PAIR_CHUNK = 200_000  # candidate edge pairs tested per numpy batch (bounds memory)


def _orient(ax, ay, bx, by, cx, cy):
    return np.sign((bx - ax) * (cy - ay) - (by - ay) * (cx - ax))


def _expand(starts: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each i, the run ``starts[i] .. starts[i] + counts[i] - 1``: returns (owner i, value) per element."""
    total = int(counts.sum())
    who = np.repeat(np.arange(len(counts)), counts)
    offs = np.zeros(len(counts), dtype=np.int64)
    if len(counts) > 1:
        np.cumsum(counts[:-1], out=offs[1:])
    return who, starts[who] + (np.arange(total) - offs[who])


@dataclass
class _Chains:
    """The tested edges cut into x-monotone chains, each chain's edges sorted by x within its index range."""

    g: np.ndarray  # edge at each sorted position
    sl: np.ndarray  # x-interval (low, high) of the edge at each sorted position
    sh: np.ndarray
    chain: np.ndarray  # chain of each position
    first: np.ndarray  # per chain: first and last position, length, bounding box
    last: np.ndarray
    length: np.ndarray
    xmin: np.ndarray
    xmax: np.ndarray
    ymin: np.ndarray
    ymax: np.ndarray


def _monotone_chains(ax, bx, own, eylo, eyhi) -> _Chains:
    n_e = len(ax)
    exlo, exhi = np.minimum(ax, bx), np.maximum(ax, bx)
    first = np.ones(n_e, dtype=bool)
    first[1:] = own[1:] != own[:-1]
    s = np.sign(bx - ax).astype(np.int8)
    s[first & (s == 0)] = 1  # a polygon starting with vertical edges: start a rising chain
    fill = np.maximum.accumulate(np.where(s != 0, np.arange(n_e), 0))
    s = s[fill]  # vertical edges take the direction of the run they are in
    cstart = first.copy()
    cstart[1:] |= s[1:] != s[:-1]
    chain = np.cumsum(cstart) - 1
    cfirst = np.flatnonzero(cstart)
    clast = np.append(cfirst[1:], n_e) - 1
    # sorted position of each edge inside its chain's index range (falling chains are reversed)
    k = np.arange(n_e)
    pos = np.where(s > 0, k, cfirst[chain] + clast[chain] - k)
    g = np.empty(n_e, dtype=np.int64)
    g[pos] = k  # g[sorted position] = edge
    sl, sh = exlo[g], exhi[g]
    return _Chains(
        g=g,
        sl=sl,
        sh=sh,
        chain=chain,
        first=cfirst,
        last=clast,
        length=clast - cfirst + 1,
        xmin=sl[cfirst],
        xmax=sh[clast],
        ymin=np.minimum.reduceat(eylo, cfirst),
        ymax=np.maximum.reduceat(eyhi, cfirst),
    )


def _chain_pairs(c: _Chains, own: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs ``(a, b)`` of chains of one polygon whose boxes overlap, ``a`` the shorter (the one queried)."""
    cpoly = own[c.first]
    plast = np.append(cpoly[1:] != cpoly[:-1], True)
    last_chain = np.flatnonzero(plast)[np.cumsum(np.append(True, cpoly[1:] != cpoly[:-1])) - 1]
    n_c = len(c.first)
    ca, cb = _expand(np.arange(n_c) + 1, last_chain - np.arange(n_c))
    ov = (
        (c.xmin[ca] <= c.xmax[cb])
        & (c.xmin[cb] <= c.xmax[ca])
        & (c.ymin[ca] <= c.ymax[cb])
        & (c.ymin[cb] <= c.ymax[ca])
    )
    ca, cb = ca[ov], cb[ov]
    swap = c.length[ca] > c.length[cb]
    return np.where(swap, cb, ca), np.where(swap, ca, cb)


def _overlap_runs(c: _Chains, ca: np.ndarray, cb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For every sorted position of chain ``a`` of each pair, the run of chain ``b``'s positions whose
    x-ranges overlap it: ``(position, run start, run length)``, empty runs left out."""
    # shift each chain to its own x range so one global searchsorted stays inside a chain
    width = c.xmax - c.xmin + 1.0
    base = np.zeros(len(c.first))
    if len(c.first) > 1:
        np.cumsum(width[:-1], out=base[1:])
    shift = base - c.xmin
    sls, shs = c.sl + shift[c.chain], c.sh + shift[c.chain]
    qi, qpos = _expand(c.first[ca], c.length[ca])  # every sorted position of chain a, against chain b
    qb = cb[qi]
    lo = np.searchsorted(shs, c.sl[qpos] + shift[qb], side="left")
    hi = np.searchsorted(sls, c.sh[qpos] + shift[qb], side="right")
    lo = np.maximum(lo, c.first[qb])
    hi = np.minimum(hi, c.last[qb] + 1)
    cnt = np.maximum(hi - lo, 0)
    keepq = cnt > 0
    return qpos[keepq], lo[keepq], cnt[keepq]


def sweep_crossings(x, y, owner, m, start, nxt, need, found) -> None:
    """Exact crossing test for the polygons flagged ``need``, pairing only edges that can meet; adds to
    ``found`` (polygon -> (crossings, x, y of the first)).

    The outline is cut into x-monotone chains (runs of edges going the same way in x; vertical edges join the
    run they are in). Two non-adjacent edges of one monotone chain cannot meet (the fold-back test covers
    the rest), so only edges of *different* chains of a polygon with overlapping x-ranges are paired: each
    chain is sorted by x for free, and a ``searchsorted`` per (edge, other chain) gives the overlapping run."""
    e = np.flatnonzero(need[owner])  # edge e goes from vertex e to vertex nxt[e]
    ax, ay, bx, by = x[e], y[e], x[nxt[e]], y[nxt[e]]
    own = owner[e]
    loc = e - start[own]
    eylo, eyhi = np.minimum(ay, by), np.maximum(ay, by)
    c = _monotone_chains(ax, bx, own, eylo, eyhi)
    ca, cb = _chain_pairs(c, own)
    qpos, lo, cnt = _overlap_runs(c, ca, cb)
    done = 0
    while done < len(cnt):  # bounded batches of pairs
        acc = np.cumsum(cnt[done:])
        stop = done + max(1, int(np.searchsorted(acc, _PAIR_CHUNK, side="right")))
        who, other = _expand(lo[done:stop], cnt[done:stop])
        p, q = c.g[qpos[done:stop][who]], c.g[other]
        done = stop
        yov = np.maximum(eylo[p], eylo[q]) <= np.minimum(eyhi[p], eyhi[q])
        dl = np.abs(loc[p] - loc[q])
        adjacent = (dl == 1) | (dl == m[own[p]] - 1)
        keep = yov & ~adjacent
        _test_pairs(p[keep], q[keep], ax, ay, bx, by, own, found)


def _test_pairs(p, q, ax, ay, bx, by, own, found) -> None:
    """Count crossing or touching edge pairs ``(p, q)`` per polygon; remember where the first one is."""
    if len(p) == 0:
        return
    a1x, a1y, b1x, b1y = ax[p], ay[p], bx[p], by[p]
    a2x, a2y, b2x, b2y = ax[q], ay[q], bx[q], by[q]
    d1 = _orient(a1x, a1y, b1x, b1y, a2x, a2y)
    d2 = _orient(a1x, a1y, b1x, b1y, b2x, b2y)
    d3 = _orient(a2x, a2y, b2x, b2y, a1x, a1y)
    d4 = _orient(a2x, a2y, b2x, b2y, b1x, b1y)
    proper = (d1 * d2 < 0) & (d3 * d4 < 0)

    def on(px, py, sx0, sy0, sx1, sy1):
        return (
            (np.minimum(sx0, sx1) <= px)
            & (px <= np.maximum(sx0, sx1))
            & (np.minimum(sy0, sy1) <= py)
            & (py <= np.maximum(sy0, sy1))
        )

    touch = (
        ((d1 == 0) & on(a2x, a2y, a1x, a1y, b1x, b1y))
        | ((d2 == 0) & on(b2x, b2y, a1x, a1y, b1x, b1y))
        | ((d3 == 0) & on(a1x, a1y, a2x, a2y, b2x, b2y))
        | ((d4 == 0) & on(b1x, b1y, a2x, a2y, b2x, b2y))
    )
    hits = np.flatnonzero(proper | touch)
    if len(hits) == 0:
        return
    polys, first, counts = np.unique(own[p[hits]], return_index=True, return_counts=True)
    h = hits[first]
    # where: the crossing point of the two edge lines (or the touching vertex)
    rx, ry = b1x[h] - a1x[h], b1y[h] - a1y[h]
    sx, sy = b2x[h] - a2x[h], b2y[h] - a2y[h]
    den = rx * sy - ry * sx
    safe = np.where(den != 0, den, 1.0)
    t = ((a2x[h] - a1x[h]) * sy - (a2y[h] - a1y[h]) * sx) / safe
    fx = np.where(den != 0, a1x[h] + t * rx, a2x[h])
    fy = np.where(den != 0, a1y[h] + t * ry, a2y[h])
    for k, c, px, py in zip(polys.tolist(), counts.tolist(), fx.tolist(), fy.tolist(), strict=True):
        if k in found:
            c0, px0, py0 = found[k]
            found[k] = (c0 + c, px0, py0)
        else:
            found[k] = (c, px, py)
