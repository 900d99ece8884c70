"""The design space: one :class:`Point` per configuration, the budget, and the two searches that make points.

* **Global grid** (:func:`grid_points`): every (precision, strategy, reuse factor) of the user's lists.  A reuse
  factor that is not valid for a layer (``fpga_gen.ir.reuse.valid_reuse_factors``) is snapped, for that layer only, to
  the largest valid one below it (the smallest valid one when none is below), so every point passes ApplyReuse.
* **Per-layer search** (:func:`per_layer_points`), instead of the full cross product of per-layer (strategy, reuse)
  options (12^4 = 20,736 for a 4-layer MLP, 10^10 for 10 layers): the II of an io_parallel design is the largest
  layer II and its resources are, up to the dataflow channels, the sum of the layers'.  So the estimator first
  profiles every layer option once (as many full-model estimates as the longest option list: each estimate costs
  every layer at once), then for each target II ``T`` (the distinct layer IIs, at most ``cap`` of them, spread
  evenly in log space) every layer independently takes its cheapest option with ``II <= T``.  For a separable cost
  this is the exact minimum at that II; "cheapest" is a weighted sum of budget-normalised resources, with three
  weightings (balanced, LUT-scarce, DSP-scarce) so the front gets designs that trade LUTs for DSPs both ways.
  Every candidate is then estimated as a whole model (which adds the dataflow channels and pipeline overheads).
  A layer option also carries the multiplier binding (``mult_impl``): a layer the config leaves at ``auto`` is
  profiled both ways, ``auto`` (the tool's choice: products under 10 bits in LUTs) and ``dsp`` (every product
  on DSP slices), so that idle DSPs can take narrow products; a layer the config binds keeps its binding.  The
  global grid keeps each layer's configured binding.
  At the same II a cheaper layer is often a slower one, so from each target's cheapest assignment a greedy pass
  moves layers to lower-latency options (most latency saved per budget share first) while the predicted total
  still fits; its last steps are candidates too.  A Pareto search over the layer options (:func:`_latency_pareto`)
  adds the lowest-latency assignments predicted to fit at the fastest targets that have one.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass

from ..ir.reuse import valid_reuse_factors
from ..ir.types import FixedType
from ..estimate.accuracy import error_band

__all__ = ["Point", "Budget", "parse_budget", "DEFAULT_BUDGET", "grid_points", "per_layer_points",
           "weighted_layers", "snap_reuse", "SweepError", "default_reuses", "BINDINGS", "binding_options",
           "layer_entry"]

RESOURCE_KEYS = {"dsp": "DSP", "lut": "LUT", "ff": "FF", "bram": "BRAM_18K", "bram_18k": "BRAM_18K",
                 "uram": "URAM"}
DEFAULT_BUDGET = {"DSP": 0.8, "LUT": 0.7, "FF": 0.7, "BRAM_18K": 0.8, "URAM": 0.8}
# resource weightings of the per-layer search (multipliers on budget-normalised use)
WEIGHTINGS = ({}, {"LUT": 4.0}, {"DSP": 4.0})
#: multiplier bindings (mult_impl) the per-layer search tries for a layer the config leaves at auto
BINDINGS = ("auto", "dsp")


def binding_options(base, name: str, bindings=BINDINGS) -> tuple:
    """The bindings the per-layer search tries for layer ``name``: ``bindings`` when the config leaves the layer
    at auto, else the config's binding only."""
    impl = base.layer_mult_impl(name) if base is not None else "auto"
    if impl != "auto":
        return (impl,)
    return tuple(dict.fromkeys(bindings)) or ("auto",)


def layer_entry(name: str, strategy: str, rf: int, impl: str = "auto") -> tuple:
    """A layer of :attr:`Point.layers`: (name, strategy, rf), with the binding appended when it is not auto (so
    designs without a binding keep the keys they had before bindings existed)."""
    return (name, strategy, int(rf)) if impl == "auto" else (name, strategy, int(rf), impl)


def _unpack(x) -> tuple:
    """(name, strategy, rf, mult_impl) of a Point.layers entry."""
    return (x[0], x[1], x[2], x[3] if len(x) > 3 else "auto")


class SweepError(ValueError):
    pass


@dataclass(frozen=True)
class Budget:
    """Fractions of the board's resources a design may use, e.g. {'DSP': 0.8, 'LUT': 0.7}, and the estimator's
    error margin per resource: a design fits when ``estimate x (1 + margin) <= fraction x available``."""
    fractions: tuple        # ((resource, fraction), ...) in RESOURCE order
    margins: tuple = ()     # ((resource, fraction), ...): the estimate's expected error (see parse_margin)
    margin_name: str = "none"

    @property
    def as_dict(self) -> dict:
        d = dict(self.fractions)
        if self.margins:
            d["margin"] = {"kind": self.margin_name, **dict(self.margins)}
        return d

    def limits(self, available: dict) -> dict:
        m = dict(self.margins)
        return {r: f * available[r] / (1.0 + m.get(r, 0.0)) for r, f in self.fractions if available.get(r)}

    def text(self) -> str:
        inv = {"DSP": "dsp", "LUT": "lut", "FF": "ff", "BRAM_18K": "bram", "URAM": "uram"}
        base = ",".join(f"{inv[r]}={f:g}" for r, f in self.fractions if r != "URAM" or f != DEFAULT_BUDGET["URAM"])
        m = {r: v for r, v in self.margins if v}
        if not m:
            return base
        eff = ",".join(f"{inv[r]}={f / (1 + m.get(r, 0.0)):.2f}" for r, f in self.fractions
                       if r != "URAM" or f != DEFAULT_BUDGET["URAM"])
        return (f"{base} less the estimator's {self.margin_name} error margin ("
                + ", ".join(f"{inv[r]} +{v * 100:.0f} %" for r, v in m.items()) + f"): {eff}")


#: ``--margin`` default: the estimator's median leave-one-source-out |error| per resource (docs/sweep.md)
DEFAULT_MARGIN = "median"


def parse_margin(text, tool: str = "vitis") -> tuple[tuple, str]:
    """'median' (the command line's default, DEFAULT_MARGIN) / 'p90': the estimator's leave-one-source-out
    |error| per resource (fpga_gen/estimate/accuracy.json); 'none', 0 or None (the Python default); or a fraction
    for every resource ('0.2')."""
    spec = "none" if text is None else str(text).strip().lower()
    if spec in ("none", "0", "0.0", "off"):
        return (), "none"
    if spec in ("median", "p90"):
        band = error_band(tool) or {}
        out = tuple((r, round(band[r][spec] / 100.0, 3)) for r in ("DSP", "LUT", "FF", "BRAM_18K") if r in band)
        return out, f"{spec} (leave-one-source-out, {band.get('group', 'no table')})"
    try:
        f = float(spec)
    except ValueError:
        raise SweepError(f"--margin {text!r}: give median, p90, none or a fraction such as 0.2") from None
    if not 0 <= f < 10:
        raise SweepError(f"--margin {text!r}: a fraction in [0, 10)")
    return tuple((r, f) for r in ("DSP", "LUT", "FF", "BRAM_18K")), f"{f:g}"


def parse_budget(text: str | dict | None, margin=None, tool: str = "vitis") -> Budget:
    """'dsp=0.8,lut=0.7,ff=0.7,bram=0.8' (fractions of the board; unnamed resources keep the defaults), with the
    estimator's error ``margin`` (:func:`parse_margin`; the Python default is none, the command line's median)."""
    fr = dict(DEFAULT_BUDGET)
    if isinstance(text, dict):
        items = list(text.items())
    else:
        items = []
        for part in (text or "").split(","):
            if not part.strip():
                continue
            if "=" not in part:
                raise SweepError(f"--budget {text!r}: expected resource=fraction pairs such as dsp=0.8,lut=0.7")
            k, v = part.split("=", 1)
            items.append((k, v))
    for k, v in items:
        r = RESOURCE_KEYS.get(str(k).strip().lower(), str(k).strip() if str(k).strip() in DEFAULT_BUDGET else None)
        if r is None:
            raise SweepError(f"--budget: unknown resource {k!r}; use dsp, lut, ff, bram, uram")
        try:
            f = float(v)
        except ValueError:
            raise SweepError(f"--budget: {k}={v!r} is not a number; give a fraction such as {k}=0.7") from None
        if not 0 < f <= 1.0:
            raise SweepError(f"--budget: {k}={f:g} must be a fraction of the board in (0, 1]")
        fr[r] = f
    margins, name = parse_margin(margin, tool)
    return Budget(tuple((r, fr[r]) for r in DEFAULT_BUDGET), margins, name)


@dataclass(frozen=True)
class Point:
    """One design: precision, io type and (strategy, reuse factor[, multiplier binding]) of every dense/conv
    layer, in graph order."""
    precision: str
    weight_precision: str | None
    io_type: str
    layers: tuple            # ((layer, strategy, reuse_factor[, mult_impl]), ...): see layer_entry
    search: str = "grid"     # which search proposed it (metadata, not part of the key)

    def canonical(self) -> dict:
        return {"precision": self.precision, "weight_precision": self.weight_precision, "io_type": self.io_type,
                "layers": [list(x) for x in self.layers]}

    def key(self, context: str) -> str:
        """Deterministic key of the design within a sweep context (model, board, part, clock)."""
        text = json.dumps({"context": context, **self.canonical()}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:20]

    @property
    def strategy(self) -> str:
        s = {x[1] for x in self.layers}
        return s.pop() if len(s) == 1 else "mixed"

    @property
    def reuse(self) -> str:
        r = {x[2] for x in self.layers}
        return str(r.pop()) if len(r) == 1 else "per-layer"

    def layers_text(self) -> str:
        """'dense_0=r16 dense_1=r16/dsp': strategy initial, reuse factor, the binding when not auto."""
        return " ".join(f"{n}={s[0]}{rf}" + (f"/{m}" if m != "auto" else "")
                        for n, s, rf, m in map(_unpack, self.layers))

    def config(self, base):
        """The ProjectConfig of this design: global strategy/reuse when uniform, per-layer entries otherwise."""
        entries = [_unpack(x) for x in self.layers]
        strategies = [s for _, s, _, _ in entries] or [base.strategy]
        reuses = [rf for _, _, rf, _ in entries] or [1]
        g_strategy = max(set(strategies), key=strategies.count)
        g_rf = max(set(reuses), key=reuses.count)
        named = {name for name, _, _, _ in entries}
        layers = {k: {kk: vv for kk, vv in v.items()
                      if kk not in ("strategy", "reuse_factor") and not (kk == "mult_impl" and k in named)}
                  for k, v in base.layers.items()}
        for name, s, rf, impl in entries:
            spec = layers.setdefault(name, {})
            if s != g_strategy:
                spec["strategy"] = s
            if rf != g_rf:
                spec["reuse_factor"] = rf
            if impl != base.mult_impl:
                spec["mult_impl"] = impl
            if self.weight_precision:
                spec.setdefault("precision", {})["weight"] = FixedType.parse(self.weight_precision)
        layers = {k: v for k, v in layers.items() if v}
        return base.copy(default_precision=FixedType.parse(self.precision), io_type=self.io_type,
                         strategy=g_strategy, reuse_factor=g_rf, layers=layers)


def weighted_layers(graph) -> list[tuple[str, int, int]]:
    """(name, n_in, n_out) of every layer with a reuse factor, as ApplyReuse sees it."""
    out = []
    for node in graph:
        if node.op == "dense":
            out.append((node.name, int(node.attrs["n_in"]), int(node.attrs["n_out"])))
        elif node.op == "conv2d":
            kh, kw = node.attrs["kernel_size"]
            out.append((node.name, int(kh * kw * node.attrs["n_chan"]), int(node.attrs["n_filt"])))
    return out


def snap_reuse(n_in: int, n_out: int, rf: int) -> int:
    valid = valid_reuse_factors(n_in, n_out)
    below = [v for v in valid if v <= rf]
    return below[-1] if below else valid[0]


def default_reuses(layers, limit: int = 4096) -> list[int]:
    """Powers of two up to the largest valid reuse factor of any layer (capped)."""
    top = max((max(valid_reuse_factors(i, o)) for _, i, o in layers), default=1)
    out, r = [], 1
    while r <= min(top, limit):
        out.append(r)
        r *= 2
    return out


def grid_points(layers, precisions, strategies, reuses, io_type="parallel", bindings: dict | None = None
                ) -> list[Point]:
    """``bindings``: layer -> its configured mult_impl (default auto)."""
    bindings = bindings or {}
    pts = []
    for prec, wprec in precisions:
        for s in strategies:
            for r in reuses:
                # distributed arithmetic: reuse factor 1 only, no multipliers to bind (fpga_gen/da)
                lay = tuple(layer_entry(n, s, 1, "auto") if s == "distributed_arithmetic" else
                            layer_entry(n, s, snap_reuse(i, o, int(r)), bindings.get(n, "auto"))
                            for n, i, o in layers)
                pts.append(Point(prec, wprec, io_type, lay, "grid"))
    return pts


def per_layer_points(profile: dict, layers, precision, strategies, available: dict, budget: Budget,
                     cap: int = 24, io_type: str = "parallel", fixed: dict | None = None,
                     boundary: int = 2) -> list[Point]:
    """Candidates of the II-targeted per-layer search (see the module docstring).

    ``profile[name]``: list of (strategy, rf, mult_impl, row) for every option of that layer, row = the layer's
    estimate row;
    ``fixed``: the resources of the layers without options (activations, softmax).  Every distinct layer II is a
    target, but only ``cap`` of them (spread in log space) plus the ``boundary`` targets on each side of the first
    one predicted to fit (fixed + the layer rows within the budget) become candidates, so the fastest fitting
    design is not lost between two log-spaced targets."""
    limits = budget.limits(available)
    fixed = fixed or {}
    iis = sorted({o[3]["ii_cycles"] for opts in profile.values() for o in opts})
    prec, wprec = precision
    per_target = []
    for T in iis:
        cands = []
        for weights in WEIGHTINGS:
            chosen, rows = [], []
            for name, _, _ in layers:
                opts = [o for o in profile[name] if o[0] in strategies and o[3]["ii_cycles"] <= T]
                if not opts:
                    break

                def cost(o, weights=weights):
                    row = o[3]
                    c = sum(weights.get(r, 1.0) * row[r] / lim for r, lim in limits.items() if lim)
                    return (c, row["latency_cycles"], o[1], o[2] != "auto")
                best = min(opts, key=cost)
                chosen.append(layer_entry(name, best[0], best[1], best[2]))
                rows.append(best[3])
            else:
                use = max(((fixed.get(r, 0) + sum(x[r] for x in rows)) / lim for r, lim in limits.items() if lim),
                          default=0.0)
                cands.append((tuple(chosen), use))
        per_target.append(cands)
    keep = set(range(len(iis)))
    if len(iis) > cap:      # targets spread evenly in log space (the first and last always stay) ...
        lg = [math.log(v) for v in iis]
        want = [lg[0] + (lg[-1] - lg[0]) * k / (cap - 1) for k in range(cap)]
        keep = {min(range(len(iis)), key=lambda j: abs(lg[j] - w)) for w in want}
        # ... and the targets around the fastest one predicted to fit
        first = next((k for k, c in enumerate(per_target) if any(u <= 1.0 for _, u in c)), None)
        if first is not None:
            keep |= set(range(max(0, first - boundary), min(len(iis), first + boundary + 1)))
    # the lowest-latency assignments predicted to fit at the fastest targets that have one (a Pareto search, which
    # finds trades the greedy cannot: e.g. binding one layer's products to DSPs frees the LUTs another layer
    # needs for a lower-latency option)
    best_lat = {}
    for k in range(len(iis)):
        found = _latency_pareto(profile, layers, strategies, iis[k], fixed, limits)
        if found:
            best_lat[k] = found
            if len(best_lat) > boundary:
                break
    pts, seen = [], set()
    for k in sorted(keep | set(best_lat)):
        lays = [lay for lay, _ in per_target[k]]
        if per_target[k]:
            lays += _latency_greedy(profile, layers, strategies, iis[k], per_target[k][0][0], fixed, limits)
        lays += best_lat.get(k, [])
        for lay in lays:
            if lay not in seen:
                seen.add(lay)
                pts.append(Point(prec, wprec, io_type, lay, "per-layer"))
    return pts


def _latency_greedy(profile, layers, strategies, T, start, fixed, limits, keep_last: int = 3) -> list:
    """From the cheapest assignment at II ``T``, move layers to lower-latency options while the predicted total
    stays within the budget, best latency saved per budget share first.  The last ``keep_last`` steps become
    candidates (the prediction leaves out the dataflow channels, so the last step may not fit once estimated)."""
    rows = {n: {(o[0], o[1], o[2]): o[3] for o in profile[n] if o[0] in strategies and o[3]["ii_cycles"] <= T}
            for n, _, _ in layers}
    cur = {n: (s, rf, impl) for n, s, rf, impl in map(_unpack, start)}
    used = {r: fixed.get(r, 0) + sum(rows[n][cur[n]][r] for n in cur) for r in limits}
    path = []
    while True:
        best = None
        for n, opts in rows.items():
            now = opts[cur[n]]
            for o, row in opts.items():
                saved = now["latency_cycles"] - row["latency_cycles"]
                if saved <= 0:
                    continue
                new = {r: used[r] - now[r] + row[r] for r in limits}
                if any(new[r] > lim for r, lim in limits.items()):
                    continue
                d = sum((row[r] - now[r]) / lim for r, lim in limits.items() if lim)
                score = (saved / max(d, 1e-9), saved, -o[1], o[2] == "auto")
                if best is None or score > best[0]:
                    best = (score, n, o, new)
        if best is None:
            break
        _, n, o, used = best
        cur[n] = o
        path.append(tuple(layer_entry(name, *cur[name]) for name, _, _ in layers))
    return path[-keep_last:]


def _latency_pareto(profile, layers, strategies, T, fixed, limits, beam: int = 64, keep: int = 3) -> list:
    """The ``keep`` lowest-latency assignments with every layer II <= ``T`` whose predicted total (``fixed`` plus
    the layer rows) fits ``limits``: layer by layer, the partial assignments that no other one beats in latency
    and every resource at once (Pareto pruning); past ``beam`` states, half are kept by latency and half by
    budget slack.  Exact while the front stays under the beam (small models)."""
    res = [r for r, lim in limits.items() if lim]
    lim = [limits[r] for r in res]
    states = [(0, tuple(fixed.get(r, 0) for r in res), ())]
    for name, _, _ in layers:
        opts = {}
        for o in profile[name]:
            if o[0] in strategies and o[3]["ii_cycles"] <= T:
                sig = (o[3]["latency_cycles"], *(o[3][r] for r in res))
                if sig not in opts or (o[2] == "auto" and opts[sig][2] != "auto"):
                    opts[sig] = o
        if not opts:
            return []
        new = []
        for lat, used, ch in states:
            for sig, o in opts.items():
                u = tuple(a + b for a, b in zip(used, sig[1:]))
                if all(x <= m for x, m in zip(u, lim)):
                    new.append((lat + sig[0], u, ch + (layer_entry(name, o[0], o[1], o[2]),)))
        states = _pareto(new, lim, beam)
        if not states:
            return []
    states.sort(key=lambda st: (st[0], max(x / m for x, m in zip(st[1], lim)), st[2]))
    return [st[2] for st in states[:keep]]


def _pareto(states, lim, beam):
    """The states no other one beats in latency and every resource; at most ``beam`` of them."""
    states = sorted(states, key=lambda st: (st[0], sum(x / m for x, m in zip(st[1], lim)), st[2]))
    front = []
    for st in states:
        if not any(f[0] <= st[0] and all(a <= b for a, b in zip(f[1], st[1])) for f in front):
            front.append(st)
    if len(front) > beam:
        slack = sorted(front, key=lambda st: (max(x / m for x, m in zip(st[1], lim)), st[0], st[2]))
        keep = {id(st): st for st in front[:beam // 2]}
        for st in slack:
            if len(keep) >= beam:
                break
            keep.setdefault(id(st), st)
        front = sorted(keep.values(), key=lambda st: (st[0], sum(x / m for x, m in zip(st[1], lim)), st[2]))
    return front
