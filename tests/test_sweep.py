"""Sweeps and fit-to-board: Pareto front, budget filter, resume, infeasible error, executors, --fit."""

import json

import numpy as np
import pytest

from fpga_gen.cli import main
from fpga_gen.sweep import (InlineExecutor, LocalExecutor, SweepError, fit, pareto_front, parse_budget, prepare,
                            run_sweep, write_outputs)
from qmodels import qmlp

BUDGET = "dsp=0.8,lut=0.7,ff=0.7,bram=0.8"


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("m") / "mlp.h5"
    qmlp([16, 24, 12, 5], bits=6, softmax=True, seed=3).save(p)
    return p


@pytest.fixture(scope="module")
def ev(model_file):
    return prepare(str(model_file), "pynq-z2")[0]


def _comparable(res):
    return [{k: v for k, v in r.items()} for r in res.rows]


def test_pareto_front_hand_built():
    pts = [(1, 10), (2, 5), (3, 5), (2, 5), (4, 1), (5, 1), (1, 12), (3, 3)]
    rows = [{"a": a, "b": b} for a, b in pts]
    # (3,5) is beaten by (2,5) and (3,3); (5,1) by (4,1); (1,12) by (1,10); both (2,5) stay (equal, not dominated)
    assert pareto_front(rows, ("a", "b")) == [0, 1, 3, 4, 7]
    assert pareto_front([], ("a",)) == []
    assert pareto_front([{"a": 1, "b": 1}], ("a", "b")) == [0]


def test_parse_budget():
    b = parse_budget("dsp=0.5, LUT=0.25")
    assert b.as_dict["DSP"] == 0.5 and b.as_dict["LUT"] == 0.25 and b.as_dict["FF"] == 0.7
    for bad, msg in (("dsp", "resource=fraction"), ("gpu=0.5", "unknown resource"), ("lut=2", "(0, 1]"),
                     ("lut=x", "not a number")):
        with pytest.raises(SweepError, match=msg.replace("(", r"\(").replace("]", r"\]")):
            parse_budget(bad)


def test_budget_filter_and_front(ev):
    res = run_sweep(ev, budget="lut=0.3,dsp=0.2")
    lim = {"DSP": 0.2 * 220, "LUT": 0.3 * 53200, "FF": 0.7 * 106400, "BRAM_18K": 0.8 * 280}
    assert res.rows and res.complete
    assert any(r["fits"] for r in res.rows) and any(not r["fits"] for r in res.rows)
    for r in res.rows:
        assert r["fits"] == all(r[k] <= v for k, v in lim.items())
        assert not r["pareto"] or r["fits"]
    front = [r for r in res.rows if r["pareto"]]
    objs = ("ii_cycles", "latency_cycles", "DSP", "LUT", "FF", "BRAM_18K", "URAM")
    for r in res.fitting():         # every fitting design is on the front or beaten by a front design
        v = [r[k] for k in objs]
        assert r["pareto"] or any(all(f[k] <= x for k, x in zip(objs, v)) and [f[k] for k in objs] != v
                                  for f in front)
    best = res.best()
    assert best["ii_cycles"] == min(r["ii_cycles"] for r in res.fitting())


def test_resume_after_interruption_equals_uninterrupted(ev, tmp_path):
    full = run_sweep(ev, budget=BUDGET, out_dir=tmp_path / "a")
    part = run_sweep(ev, budget=BUDGET, out_dir=tmp_path / "b", max_new=7, chunk=3)
    assert not part.complete and part.evaluated == 7 and len(part.rows) == 7
    rest = run_sweep(ev, budget=BUDGET, out_dir=tmp_path / "b", chunk=3)
    assert rest.complete and rest.evaluated == len(full.rows) - 7
    assert _comparable(rest) == _comparable(full)
    again = run_sweep(ev, budget=BUDGET, out_dir=tmp_path / "b")
    assert again.evaluated == 0 and _comparable(again) == _comparable(full)


def test_outputs(ev, tmp_path):
    res = run_sweep(ev, budget=BUDGET)
    files = write_outputs(res, tmp_path)
    assert files["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    doc = json.loads(files["json"].read_text())
    assert doc["best"]["key"] == res.best()["key"] and doc["ii_bound"]["ii"] >= 1
    assert len(files["csv"].read_text().splitlines()) == len(res.rows) + 1
    html = files["html"].read_text()
    assert "<svg" in html and "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_fit_picks_fastest_fitting(ev):
    res, point = fit(ev, budget="lut=0.3")
    fitting = res.fitting()
    best = min(fitting, key=lambda r: (r["ii_cycles"], r["latency_cycles"]))
    assert res.best()["ii_cycles"] == best["ii_cycles"] and res.best()["latency_cycles"] == best["latency_cycles"]
    # the materialised design estimates to exactly the chosen row
    est = ev.estimate(point).total
    assert {k: est[k] for k in ("DSP", "LUT", "ii_cycles")} == {k: res.best()[k] for k in ("DSP", "LUT", "ii_cycles")}
    # and it is faster than every global-grid design that fits
    assert all(r["ii_cycles"] >= best["ii_cycles"] for r in res.rows if r["fits"])


def test_cli_build_fit(capsys, tmp_path, model_file):
    rc = main(["build", str(model_file), "--fit", "pynq-z2", "--budget", "lut=0.3", "-o", str(tmp_path / "p")])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "fastest that fits" in out
    cfg = json.loads((tmp_path / "p" / "fpga_gen_project.json").read_text())["config"]
    assert cfg["board"] == "pynq-z2"
    rep = json.loads((tmp_path / "p" / "report.json").read_text())
    assert rep["total"]["LUT"] <= 0.3 * 53200


def test_infeasible_error_and_exit_code(capsys, tmp_path, model_file):
    rc = main(["build", str(model_file), "--fit", "pynq-z2", "--budget", "lut=0.01", "-o", str(tmp_path / "p")])
    out, err = capsys.readouterr()
    assert rc == 2
    # the budget it applied: the user's fractions less the estimator's median error (--margin's default)
    assert err.startswith("fpga-gen: error: nothing fits pynq-z2 within dsp=0.8,lut=0.01,ff=0.7,bram=0.8 less the "
                          "estimator's median (leave-one-source-out")
    assert ": the smallest design needs LUT " in err
    assert err.rstrip().endswith("% of 53,200); try a larger board, io_stream or a narrower precision (or "
                                 "--split-to-fit: the FPGA holds the longest head that fits, the rest runs on the "
                                 "CPU/GPU fallback)")
    assert err.count("\n") == 1 and not (tmp_path / "p").exists()


def test_split_to_fit_puts_the_longest_fitting_head_on_the_fpga(capsys, tmp_path, model_file):
    """A budget the whole model misses: the head that fits becomes the project, the tail runs on the fallback,
    and split predict gives the whole model's emulator bits."""
    import fpga_gen
    from fpga_gen.sweep import SweepError, fit, split_points, split_to_fit
    from fpga_gen.sweep.space import parse_budget
    ev = prepare(str(model_file), "pynq-z2")[0]
    budget = parse_budget("lut=0.1,dsp=0.05")
    with pytest.raises(SweepError, match="nothing fits pynq-z2"):
        fit(ev, budget=budget)
    at, res, point = split_to_fit(ev, budget=budget)
    points = split_points(ev.typed(ev.base.default_precision.cpp(), None))
    assert points == ["dense_0", "act_0", "dense_1", "act_1", "dense_2"]
    assert at in points and at != points[-1]
    assert points.index(at) < len(points) - 1                # later cuts exist, and none of them fits
    best = res.best()
    assert best["fits"] and best["LUT"] <= 0.1 * 53200 and best["DSP"] <= 0.05 * 220
    # the same budget as the API call above: no error margin (the command line's default takes the median off)
    rc = main(["build", str(model_file), "--fit", "pynq-z2", "--budget", "lut=0.1,dsp=0.05", "--margin", "none",
               "--split-to-fit", "-o", str(tmp_path / "p")])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert f"fastest that fits (the model up to {at!r})" in out
    project = fpga_gen.load_project(tmp_path / "p")
    assert project.split_at == at
    rep = json.loads((tmp_path / "p" / "report.json").read_text())
    assert rep["total"]["LUT"] <= 0.1 * 53200
    x = np.random.default_rng(4).uniform(-4, 4, size=(300, 16))
    whole = fpga_gen.convert(str(model_file))
    assert np.array_equal(project.predict(x, backend="split"), whole.predict(x, backend="emu"))
    assert np.array_equal(project.predict(x, backend="split-csim"), whole.predict(x, backend="emu"))


def test_split_to_fit_when_not_even_the_first_layer_fits(model_file):
    from fpga_gen.sweep import split_to_fit
    from fpga_gen.sweep.space import parse_budget
    ev = prepare(str(model_file), "pynq-z2")[0]
    with pytest.raises(SweepError, match=r"^even the model up to 'dense_0' alone does not fit: nothing fits pynq-z2 "
                                         r"within dsp=0.01,lut=0.08,ff=0.7,bram=0.8: the smallest design needs "):
        split_to_fit(ev, budget=parse_budget("lut=0.08,dsp=0.01"))


def test_split_to_fit_needs_fit(capsys, model_file, tmp_path):
    assert main(["build", str(model_file), "--split-to-fit", "-o", str(tmp_path / "p")]) == 2
    assert capsys.readouterr().err == "fpga-gen: error: --split-to-fit applies to --fit BOARD; give --fit too\n"


def test_sweep_enumerates_both_io_types(capsys, tmp_path, model_file):
    rc = main(["sweep", str(model_file), "--board", "pynq-z2", "--io", "parallel,stream", "--reuse", "1,2",
               "--strategy", "latency", "-o", str(tmp_path / "s")])
    out, err = capsys.readouterr()
    assert rc == 0, err
    rows = json.loads((tmp_path / "s" / "sweep.json").read_text())["rows"]
    by_io = {io: [r for r in rows if r["io_type"] == io] for io in ("parallel", "stream")}
    assert by_io["parallel"] and by_io["stream"] and not any(r["error"] for r in rows)
    # the same layer settings cost differently: stream adds FIFOs and overlaps the layers
    grid = {(r["io_type"], r["layers"]): r for r in rows if r["search"] == "grid"}
    pairs = [(grid[("parallel", k)], grid[("stream", k)]) for io, k in grid if io == "parallel"]
    assert pairs and any(p["LUT"] != s["LUT"] or p["latency_cycles"] != s["latency_cycles"] for p, s in pairs)
    rc = main(["sweep", str(model_file), "--board", "pynq-z2", "--io", "parallel,serial", "-o", str(tmp_path / "t")])
    _, err = capsys.readouterr()
    assert rc == 2 and "io type 'serial': use parallel and/or stream" in err


def test_cli_sweep(capsys, tmp_path, model_file):
    rc = main(["sweep", str(model_file), "--board", "pynq-z2", "--reuse", "1,2,4,8", "--precision",
               "ap_fixed<16,6>,ap_fixed<12,4>", "--strategy", "resource", "-o", str(tmp_path / "s")])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "fastest that fits" in out and "sweep: done in" in err
    rows = json.loads((tmp_path / "s" / "sweep.json").read_text())["rows"]
    assert {r["precision"] for r in rows} == {"ap_fixed<16,6>", "ap_fixed<12,4>"}
    assert {r["strategy"] for r in rows} == {"resource"}
    rc = main(["sweep", str(model_file), "--board", "pynq-z2", "--reuse", "1,2,4,8", "--precision",
               "ap_fixed<16,6>,ap_fixed<12,4>", "--strategy", "resource", "-o", str(tmp_path / "s")])
    out2, _ = capsys.readouterr()
    assert "(0 estimated now)" in out2


def test_local_processes_equal_inline(ev):
    a = run_sweep(ev, budget=BUDGET, executor=InlineExecutor())
    b = run_sweep(ev, budget=BUDGET, executor=LocalExecutor(workers=2, inline_below=0), chunk=5)
    assert _comparable(a) == _comparable(b)


def test_dask_local_cluster_equals_local(ev):
    distributed = pytest.importorskip("dask.distributed")
    from fpga_gen.sweep import DaskExecutor
    local = run_sweep(ev, budget=BUDGET)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        res = run_sweep(ev, budget=BUDGET, executor=DaskExecutor(client), chunk=4)
    assert _comparable(res) == _comparable(local)


class _CtrlCAfter:
    """An executor whose user presses Ctrl-C after ``n`` finished chunks."""

    def __init__(self, n):
        self.n = n

    def map(self, fn, shared, items):
        for i, r in InlineExecutor().map(fn, shared, items):
            if i == self.n:
                raise KeyboardInterrupt
            yield i, r


def test_ctrl_c_keeps_finished_results(ev, tmp_path, capsys):
    full = run_sweep(ev, budget=BUDGET)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(ev, budget=BUDGET, out_dir=tmp_path, executor=_CtrlCAfter(2), chunk=4)
    assert "8 of" in capsys.readouterr().err and (tmp_path / "sweep.sqlite").is_file()
    res = run_sweep(ev, budget=BUDGET, out_dir=tmp_path, chunk=4)
    assert res.evaluated == len(full.rows) - 8 and _comparable(res) == _comparable(full)


@pytest.mark.slow
def test_cli_sweep_verify(capsys, tmp_path, model_file):
    x = np.round(np.random.default_rng(0).uniform(-2, 2, (50, 16)) * 16) / 16
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", np.arange(50) % 5)
    rc = main(["sweep", str(model_file), "--board", "pynq-z2", "--reuse", "4,8", "--strategy", "resource",
               "-o", str(tmp_path / "s"), "--verify", "2", "--data", str(tmp_path / "x.npy"),
               "--labels", str(tmp_path / "y.npy")])
    out, err = capsys.readouterr()
    assert rc == 0, err
    ver = json.loads((tmp_path / "s" / "sweep.json").read_text())["verification"]
    assert len(ver) == 2 and all(v["exact_match"] == 1.0 and "accuracy" in v for v in ver)
    assert out.count("csim II") == 2


def test_weight_precision_points(ev):
    from fpga_gen.sweep import parse_precisions
    precs = parse_precisions(["ap_fixed<16,6>", "ap_fixed<12,4>/ap_fixed<8,3>"])
    assert precs == [("ap_fixed<16,6>", None), ("ap_fixed<12,4>", "ap_fixed<8,3>")]
    res = run_sweep(ev, precisions=precs, strategies=["resource"], reuses=[4], per_layer=False)
    assert [(r["precision"], r["weight_precision"]) for r in res.rows] == [("ap_fixed<16,6>", ""),
                                                                         ("ap_fixed<12,4>", "ap_fixed<8,3>")]
    g, cfg = ev.materialize(res.points[res.rows[1]["key"]])
    dense = [n for n in g if n.op == "dense"]
    assert all(n.types["weight"].cpp() == "ap_fixed<8,3>" for n in dense)
    assert all(n.attrs["strategy"] == "resource" and n.attrs["reuse_factor"] == 4 for n in dense)
    assert cfg.default_precision.cpp() == "ap_fixed<12,4>"


@pytest.mark.parametrize("budget", ["lut=0.3", "lut=0.25,dsp=0.1", "lut=0.5,ff=0.2"])   # the smallest design: LUT 21 %
def test_fit_matches_exhaustive_search(ev, budget):
    """No per-layer (strategy, reuse, binding) combination the fit did not try is faster and fits."""
    import itertools
    from fpga_gen.sweep import Point
    from fpga_gen.sweep.run import _profile
    from fpga_gen.sweep.space import layer_entry
    res, point = fit(ev, budget=budget)
    best = res.best()
    prof, _ = _profile(ev, (ev.base.default_precision.cpp(), None), ev.layers(), ("latency", "resource"))
    opts = []
    for name, _, _ in ev.layers():
        seen, keep = set(), []
        for s, rf, m, row in prof[name]:
            sig = tuple(row[k] for k in ("ii_cycles", "latency_cycles", "DSP", "LUT", "FF", "BRAM_18K"))
            if row["ii_cycles"] <= best["ii_cycles"] and sig not in seen:
                seen.add(sig)
                keep.append(layer_entry(name, s, rf, m))
        opts.append(keep)
    combos = list(itertools.product(*opts))
    assert 0 < len(combos) < 20000
    lim = res.limits
    for combo in combos:
        t = ev.estimate(Point(best["precision"], None, "parallel", combo)).total
        if all(t[k] <= v for k, v in lim.items()):
            assert (t["ii_cycles"], t["latency_cycles"]) >= (best["ii_cycles"], best["latency_cycles"]), combo


