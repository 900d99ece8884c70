"""Make the HGQ2 reference models of tests/test_hgq2.py: small HGQ2 models trained a few epochs on the sklearn
digits (so the learned bit widths become heterogeneous, some 0 or negative), saved as .keras archives, with
inputs and HGQ2's own model.predict outputs in <name>.npz (x, y: float64 copies of HGQ2's float32 values).

Needs hgq2 0.2 (Keras 3), which installs a package named qkeras of its own: run it in a separate venv, never in
fpga-gen's (which holds QKeras 0.9):

    python3 -m venv /work/venvs/hgq2 && /work/venvs/hgq2/bin/pip install hgq2==0.2.0 'tensorflow==2.21.*' scikit-learn
    /work/venvs/hgq2/bin/python tests/data/hgq2/make_refs.py [--only NAME ...] [--random N --seed S]

Inputs (ref_inputs): 192 digits (pixels / 16, in [0, 1]) and 64 rows uniform in [-4, 4) on the grid 1/64, all
exact in fpga-gen's default input type.  ``--repredict ARCHIVE...`` recomputes HGQ2's outputs of existing
archives on these inputs without retraining; ``--deflate ARCHIVE...`` recompresses archives.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
N_REF = 256


def data():
    from sklearn.datasets import load_digits
    d = load_digits()
    return (d.data / 16.0).astype(np.float32), d.target.astype(np.int64)


def ref_inputs(x):
    """The reference inputs: N_REF - 64 digits (x / 16 in [0, 1]) and 64 rows drawn uniformly from [-4, 4) on the
    grid 1/64 (negative and large values: overflow, wrap and saturation of the first quantizer).  Every value
    is exact in float32 and in fpga-gen's default input type ap_fixed<16,6>."""
    rng = np.random.default_rng(1234)
    wild = np.floor(rng.uniform(-4, 4, (64, x.shape[1])) * 64) / 64
    return np.concatenate([x[:N_REF - 64], wild]).astype(np.float32)


def repredict(path: Path):
    """HGQ2's predict on the reference inputs for an existing archive (no retraining): <name>.npz anew."""
    import hgq  # noqa: F401  (registers HGQ2's classes)
    import keras
    x, _ = data()
    m = keras.saving.load_model(path, compile=False)
    xr = ref_inputs(x)
    y = np.asarray(m.predict(xr, verbose=0), dtype=np.float64)
    assert np.all(np.isfinite(y))
    np.savez_compressed(path.with_suffix(".npz"), x=xr.astype(np.float64), y=y)


def QC(q_type, place, **kw):
    from hgq.quantizer import QuantizerConfig
    return QuantizerConfig(q_type, place, **kw)


def m_mlp(keras, L):
    """QDense(relu) -> ReLU -> QDense: default quantizers (kif WRAP inputs, kbi SAT_SYM weights, kbi WRAP bias)."""
    inp = keras.Input((64,))
    x = L.QDense(24, activation="relu", beta0=3e-4, name="fc1")(inp)
    x = L.QDense(16, beta0=3e-4, name="fc2")(x)
    x = keras.layers.ReLU(name="relu2")(x)
    x = L.QDense(10, beta0=3e-4, name="out")(x)
    return keras.Model(inp, x, name="mlp")


def m_modes(keras, L):
    """Forced modes: kif SAT/TRN and SAT_SYM/RND_CONV inputs, kbi WRAP/RND_CONV and kif SAT/TRN weights, an
    output quantizer, Activation('relu')."""
    inp = keras.Input((64,))
    x = L.QDense(20, beta0=1e-4, name="fc1",
                 iq_conf=QC("kif", "datalane", overflow_mode="SAT", round_mode="TRN", i0=1, f0=3),
                 kq_conf=QC("kbi", "weight", overflow_mode="WRAP", round_mode="RND_CONV", b0=5, i0=1),
                 enable_oq=True,
                 oq_conf=QC("kbi", "datalane", overflow_mode="SAT", round_mode="RND", b0=6, i0=3))(inp)
    x = keras.layers.Activation("relu", name="act")(x)
    x = L.QDense(12, beta0=1e-4, name="fc2",
                 iq_conf=QC("kif", "datalane", overflow_mode="SAT_SYM", round_mode="RND_CONV", i0=3, f0=3),
                 kq_conf=QC("kif", "weight", overflow_mode="SAT", round_mode="TRN", i0=1, f0=4))(x)
    x = L.QDense(10, beta0=1e-4, name="out",
                 iq_conf=QC("kbi", "datalane", overflow_mode="WRAP", round_mode="RND", b0=7, i0=3))(x)
    return keras.Model(inp, x, name="modes")


def m_cnn(keras, L):
    """Reshape -> QConv2D(relu) -> QMaxPool2D -> QConv2D -> Flatten -> QDense."""
    inp = keras.Input((64,))
    x = keras.layers.Reshape((8, 8, 1), name="img")(inp)
    x = L.QConv2D(4, 3, activation="relu", beta0=1e-4, name="c1")(x)
    x = L.QMaxPool2D(2, name="p1")(x)
    x = L.QConv2D(6, 2, padding="same", beta0=1e-4, name="c2")(x)
    x = keras.layers.Flatten(name="flat")(x)
    x = L.QDense(10, beta0=1e-4, name="out")(x)
    return keras.Model(inp, x, name="cnn")


def m_branches(keras, L):
    """Conv1D, average pooling, QAdd / QMultiply / QMaximum / QSubtract / QMinimum and Concatenate."""
    inp = keras.Input((64,))
    x = keras.layers.Reshape((16, 4), name="seq")(inp)
    a = L.QConv1D(4, 3, padding="same", activation="relu", beta0=1e-4, name="c1")(x)
    a = L.QAvgPool1D(2, name="p1")(a)
    b = L.QConv1D(4, 2, strides=2, beta0=1e-4, name="c2")(x)
    s = L.QAdd(name="add")([a, b])
    m = L.QMultiply(name="mul")([a, b])
    mx = L.QMaximum(name="max")([s, m])
    d = L.QSubtract(name="sub")([mx, b])
    mn = L.QMinimum(name="min")([d, a])
    c = keras.layers.Concatenate(name="cat")([mn, s])
    g = L.QGlobalMaxPool1D(name="gmax")(c)
    y = L.QDense(10, beta0=1e-4, name="out")(g)
    return keras.Model(inp, y, name="branches")


def m_bndense(keras, L):
    """QBatchNormDense and a global average pooling over a power-of-two window."""
    inp = keras.Input((64,))
    x = L.QBatchNormDense(16, activation="relu", beta0=1e-4, name="bnd")(inp)
    x = keras.layers.Reshape((4, 4), name="r")(x)
    x = L.QGlobalAvgPool1D(name="gavg")(x)
    x = L.QDense(10, beta0=1e-4, name="out")(x)
    return keras.Model(inp, x, name="bndense")


def m_norm(keras, L):
    """QEinsumDense ('xa,ab->xb', relu), QBatchNormalization, QEinsumDenseBatchnorm and a per-tensor kbi input
    quantizer."""
    inp = keras.Input((64,))
    x = L.QEinsumDense("xa,ab->xb", output_shape=16, bias_axes="b", activation="relu", beta0=1e-4,
                       name="ein")(inp)
    x = L.QBatchNormalization(beta0=1e-4, name="bn")(x)
    x = L.QEinsumDenseBatchnorm("xa,ab->xb", output_shape=12, bias_axes="b", beta0=1e-4, name="einbn")(x)
    x = L.QDense(10, beta0=1e-4, name="out",
                 iq_conf=QC("kbi", "datalane", homogeneous_axis=(0, 1), overflow_mode="SAT", b0=6, i0=3))(x)
    return keras.Model(inp, x, name="norm")


def m_seq(keras, L):
    """A Sequential model: strided QConv2D, QAvgPool2D, QGlobalAvgPool2D-free flatten, QDense (relu)."""
    return keras.Sequential([
        keras.Input((64,)),
        keras.layers.Reshape((8, 8, 1)),
        L.QConv2D(4, 3, strides=(1, 2), padding="same", activation="relu", beta0=1e-4, name="c1"),
        L.QAvgPool2D((2, 2), name="p1"),
        keras.layers.Flatten(),
        L.QDense(12, activation="relu", beta0=1e-4, name="fc"),
        L.QDense(10, beta0=1e-4, name="out"),
    ], name="seq")


def m_softmax(keras, L):
    """QDense -> HGQ2's Quantizer layer -> QDense -> QSoftmax (stable: max - x, exp table, sum, 1/x table)."""
    from hgq.layers import Quantizer
    inp = keras.Input((64,))
    x = L.QDense(16, activation="relu", beta0=1e-4, name="fc1")(inp)
    x = Quantizer(QC("kif", "datalane", overflow_mode="SAT", round_mode="RND_CONV", i0=3, f0=2), name="q")(x)
    x = L.QDense(10, beta0=1e-4, name="out")(x)
    x = L.QSoftmax(name="softmax")(x)
    return keras.Model(inp, x, name="softmax")


def m_lut(keras, L):
    """QUnaryFunctionLUT tables: tanh (per-element input widths), sigmoid, exp (the default table output
    quantizer: one width), and a QAffinedUnaryFunctionLUT (softsign of x * scale + bias, both trained)."""
    inp = keras.Input((64,))
    x = L.QDense(16, beta0=1e-4, name="fc1")(inp)
    x = L.QUnaryFunctionLUT("tanh", beta0=1e-4, name="tanh")(x)
    x = L.QDense(12, beta0=1e-4, name="fc2")(x)
    x = L.QUnaryFunctionLUT("sigmoid", beta0=1e-4, name="sig",
                            iq_conf=QC("kif", "datalane", overflow_mode="SAT", round_mode="TRN", i0=2, f0=3))(x)
    x = L.QAffinedUnaryFunctionLUT("softsign", beta0=1e-4, name="affine")(x)
    x = L.QDense(10, beta0=1e-4, name="out")(x)
    x = L.QUnaryFunctionLUT("exponential", beta0=1e-4, name="exp",
                            iq_conf=QC("kif", "datalane", overflow_mode="SAT", i0=1, f0=3))(x)
    return keras.Model(inp, x, name="lut")


MODELS = {"mlp": m_mlp, "seq": m_seq, "softmax": m_softmax, "lut": m_lut, "modes": m_modes, "cnn": m_cnn, "branches": m_branches, "bndense": m_bndense,
          "norm": m_norm}

TAIL_SEEDS = 200          # random models from this seed on also draw the tail layers (random_model)
ALL_ROUND = ("TRN", "RND", "RND_CONV", "TRN_ZERO", "RND_ZERO", "RND_INF", "RND_MIN_INF")
ALL_OVERFLOW = ("WRAP", "SAT", "SAT_SYM")


def random_model(seed: int):
    """A random small HGQ2 model (the fuzzer): an MLP, a 2-D or a 1-D CNN, with random quantizer kinds (kif,
    kbi), round and overflow modes, bit-width granularity (per element, per channel, per tensor) and output
    quantizers; from seed TAIL_SEEDS on also QBatchNormalization, QUnaryFunctionLUT, Quantizer and QSoftmax."""
    rng = np.random.default_rng(seed)

    def qc(place):
        q_type = str(rng.choice(["kif", "kbi"]))
        kw = {"round_mode": str(rng.choice(ALL_ROUND)), "overflow_mode": str(rng.choice(ALL_OVERFLOW))}
        if q_type == "kif":
            kw.update(i0=int(rng.integers(0, 4)), f0=int(rng.integers(1, 6)))
        else:
            kw.update(b0=int(rng.integers(3, 9)), i0=int(rng.integers(0, 4)))
        if place == "datalane":
            kw["homogeneous_axis"] = [(0,), None, "tensor"][int(rng.integers(0, 3))]
            if kw["homogeneous_axis"] is None:
                kw.pop("homogeneous_axis")
                kw["heterogeneous_axis"] = (-1,)          # per channel
            elif kw["homogeneous_axis"] == "tensor":
                kw.pop("homogeneous_axis")
                kw["heterogeneous_axis"] = ()             # one width for the tensor
        return QC(q_type, place, **kw)

    def common():
        kw = {"beta0": 1e-4, "iq_conf": qc("datalane")}
        if rng.random() < 0.3:
            kw.update(enable_oq=True, oq_conf=qc("datalane"))
        return kw

    def weighted():
        return {**common(), "kq_conf": qc("weight"), "bq_conf": qc("bias")}

    kind = str(rng.choice(["mlp", "cnn2d", "cnn1d"]))

    def build(keras, L):
        inp = keras.Input((64,))
        if kind == "mlp":
            x = inp
            for k in range(int(rng.integers(1, 3))):
                x = L.QDense(int(rng.integers(4, 17)), activation=str(rng.choice(["relu", "linear"])),
                             name=f"d{k}", **weighted())(x)
        else:
            x = keras.layers.Reshape((8, 8, 1) if kind == "cnn2d" else (16, 4), name="r")(inp)
            conv, pool = (L.QConv2D, L.QMaxPool2D) if kind == "cnn2d" else (L.QConv1D, L.QMaxPool1D)
            x = conv(int(rng.integers(2, 6)), int(rng.integers(2, 4)), padding=str(rng.choice(["valid", "same"])),
                     activation=str(rng.choice(["relu", "linear"])), name="c0", **weighted())(x)
            if rng.random() < 0.5:
                x = pool(2, name="p0", **common())(x)
            x = keras.layers.Flatten(name="f")(x)
        if seed >= TAIL_SEEDS:
            x = tail(keras, L, x)
        x = L.QDense(10, name="out", **weighted())(x)
        if seed >= TAIL_SEEDS and rng.random() < 0.5:
            x = L.QSoftmax(name="softmax")(x)
        return keras.Model(inp, x, name=f"random{seed}")

    def tail(keras, L, x):
        # seeds from TAIL_SEEDS on: a batch norm, a table function and a Quantizer layer between the body
        # and the output layer, each with probability 1/2 (drawn after the body, so smaller seeds keep their
        # models)
        from hgq.layers import Quantizer
        if rng.random() < 0.5:
            x = L.QBatchNormalization(name="bn", beta0=1e-4, iq_conf=qc("datalane"))(x)
        if rng.random() < 0.5:
            x = L.QUnaryFunctionLUT(str(rng.choice(["tanh", "sigmoid", "softsign", "elu"])), name="lut",
                                    beta0=1e-4)(x)
        if rng.random() < 0.5:
            x = Quantizer(qc("datalane"), name="q")(x)
        return x

    return kind, build


def quantizers(model):
    """Every HGQ2 fixed-point quantizer of the model (input, kernel, bias, output; merges' several inputs)."""
    out = []
    for layer in model.layers:
        for attr in ("_iq", "_kq", "_bq", "_oq"):
            q = getattr(layer, attr, None)
            if q is None:
                continue
            out.extend([qq.quantizer for qq in q] if hasattr(q, "quantizers") else [q.quantizer])
    return out


def roughen(model, rng):
    return _roughen(model, rng)


def _roughen(model, rng):
    """A few epochs leave the bit widths near their initial values; move them the way longer training with a
    resource penalty does: fraction bits down by 0..3 per element and by 6 more for a tenth of them (kbi: bits
    down by 0..4, 8 more for a tenth, floored at 0; the 6 or 8 more only for heterogeneous quantizers, so a
    per-tensor one, e.g. a table's output, keeps some bits), so the widths become heterogeneous and some elements reach
    0 or negative widths; a few integer bits down by one, so some values overflow (wrap or saturate)."""
    for q in quantizers(model):
        if hasattr(q, "_f"):
            f = np.asarray(q._f.numpy())
            q._f.assign((np.round(f) - rng.integers(0, 4, f.shape) * (rng.random(f.shape) < 0.8)
                         - 6 * (rng.random(f.shape) < 0.1) * (f.size > 1)).astype(f.dtype))
        else:
            b = np.asarray(q._b.numpy())
            q._b.assign(np.maximum(np.round(b) - rng.integers(0, 5, b.shape)
                                   - 8 * (rng.random(b.shape) < 0.1) * (b.size > 1), 0).astype(b.dtype))
        i = np.asarray(q._i.numpy())
        q._i.assign((np.round(i) - (rng.random(i.shape) < 0.15)).astype(i.dtype))


def deflate(path: Path) -> None:
    """Keras stores the archive's members uncompressed; the same members deflated keep the committed
    references small (Keras reads either)."""
    import zipfile
    with zipfile.ZipFile(path) as z:
        members = [(i.filename, z.read(i.filename)) for i in z.infolist()]
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for name, data in members:
            z.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data,
                       compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)


def train_and_save(name, build, x, y, epochs=3, seed=0):
    import keras
    from hgq import layers as L
    keras.utils.set_random_seed(seed)
    model = build(keras, L)
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(x, y, epochs=epochs, batch_size=64, verbose=0)
    roughen(model, np.random.default_rng(seed))
    # the archive without the optimizer's state (a fresh model holding the trained variables): smaller files
    bare = model.__class__.from_config(model.get_config())
    bare.set_weights(model.get_weights())
    path = HERE / f"{name}.keras"
    bare.save(path)
    deflate(path)
    # reload (the archive is what fpga-gen reads) and predict: HGQ2's quantized forward pass (training=False)
    m2 = keras.saving.load_model(path, compile=False)
    xr = ref_inputs(x)
    yr = np.asarray(m2.predict(xr, verbose=0), dtype=np.float64)
    y1 = np.asarray(model.predict(xr, verbose=0), dtype=np.float64)
    assert np.array_equal(yr, y1), f"{name}: the reloaded model predicts differently"
    assert np.all(np.isfinite(yr))
    np.savez_compressed(HERE / f"{name}.npz", x=xr.astype(np.float64), y=yr)
    acc = float(np.mean(np.argmax(yr, 1) == y[:N_REF]))
    bits = []
    for q in quantizers(m2):
        k, i, f = (np.asarray(v) for v in q.kif)
        bits.append((k + i + f).ravel())
    b = np.concatenate(bits)
    print(f"{name}: accuracy {acc:.3f}; quantized bit widths {int(b.min())}..{int(b.max())}, "
          f"{int(np.sum(b <= 0))} of {b.size} at 0 bits or fewer")


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--random", type=int, default=0, help="also draw this many random models (random<seed>)")
    ap.add_argument("--seed", type=int, default=100, help="the first random model's seed")
    args = ap.parse_args(argv)
    x, y = data()
    for name, build in MODELS.items():
        if args.only is not None and name not in args.only:
            continue
        train_and_save(name, build, x, y)
    for seed in range(args.seed, args.seed + args.random):
        kind, build = random_model(seed)
        print(f"random{seed}: {kind}", end=": ")
        train_and_save(f"random{seed}", build, x[:512], y[:512], epochs=1, seed=seed)


if __name__ == "__main__" and sys.argv[1:2] == ["--repredict"]:
    for p in sys.argv[2:]:
        repredict(Path(p))
    sys.exit(0)

if __name__ == "__main__" and sys.argv[1:2] == ["--deflate"]:
    for p in sys.argv[2:]:
        deflate(Path(p))
    sys.exit(0)

if __name__ == "__main__":
    sys.exit(main())
