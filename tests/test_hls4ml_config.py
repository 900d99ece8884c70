"""The hls4ml config reader on real configs (copied byte for byte from the calibration projects, trimmed where
marked), and hls4ml's precision resolution applied to a graph."""

import math
from pathlib import Path

import numpy as np
import pytest

from fpga_gen.config import ConfigError
from fpga_gen.hls4ml_config import (SOFTMAX_TABLE_DEFAULT, apply_to_graph, config_from_hls4ml, read_hls4ml_config,
                                    to_project_config)
from fpga_gen.ir import FixedType, Graph, Node

# /work/shared/calibration/nrp-model_1_hls4ml_prj/hls4ml_config.yml (hls4ml 1.0.0, Vitis 2022.2, xcu250)
NRP = """\
Backend: Vitis
ClockPeriod: 5
ClockUncertainty: 27%
HLSConfig:
  Model:
    BramFactor: 1000000000
    Precision:
      default: fixed<16,6>
    ReuseFactor: 1
    Strategy: Latency
    TraceOutput: false
IOType: io_parallel
InputData: null
KerasModel: !keras_model 'model_1/hls4ml_prj/keras_model.keras'
OutputDir: model_1/hls4ml_prj
OutputPredictions: null
Part: XCU250-FIGD2104-2L-E
ProjectName: myproject
Stamp: 187230ed
Version: 1.0.0
WriterConfig:
  Namespace: null
  WriteTar: false
  WriteWeightsTxt: true
"""

# /work/shared/calibration/jmduarte-precision_lut_scaling-bits_6/hls4ml_config.yml, trimmed to three layers
JMDUARTE = """\
Backend: Vivado
ClockPeriod: 10
HLSConfig:
  LayerName:
    batch_normalization:
      Precision:
        bias: ap_fixed<16,6>
        scale: ap_fixed<16,6>
      ReuseFactor: 512
    input_1:
      Precision: ap_fixed<8,8>
    q_activation:
      Precision:
        result: ap_fixed<7,4>
      ReuseFactor: 512
    q_dense:
      Precision:
        bias: ap_fixed<7,1>
        weight: ap_fixed<7,1>
      ReuseFactor: 512
  Model:
    Precision: ap_fixed<32,16>
    ReuseFactor: 512
    Strategy: Resource
IOType: io_parallel
KerasModel: !keras_model 'hls/precision_lut_scaling_master_branch/anomaly_detector_prj/keras_model.h5'
OutputDir: hls/precision_lut_scaling_master_branch/anomaly_detector_prj
ProjectName: anomaly_detector
Stamp: 14dBcf30
XilinxPart: xc7z020clg400-1
"""

# /work/shared/calibration/rishthakkar-quantized_pruned_cnn-53d7b74/hls4ml_config.yml, trimmed
RISH = """\
AcceleratorConfig:
  Board: pynq-z2
  Driver: python
  Interface: axi_stream
  Precision:
    Input: float
    Output: float
Backend: VivadoAccelerator
ClockPeriod: 5
HLSConfig:
  LayerName:
    conv_act_0:
      Precision:
        result: ufixed<6,0,RND_CONV,SAT>
      Trace: false
    dense_0:
      Precision:
        bias: fixed<16,6>
        result: fixed<16,6>
        weight: fixed<6,1>
      Trace: false
    output_softmax:
      Precision:
        result: fixed<16,6>
      Strategy: Stable
      Trace: false
  Model:
    BramFactor: 1000000000
    Precision: fixed<16,6>
    ReuseFactor: 1
    Strategy: Latency
    TraceOutput: false
IOType: io_stream
KerasModel: !keras_model 'quantized_pruned_cnn//keras_model.h5'
OutputDir: quantized_pruned_cnn/
Part: xc7z020clg400-1
ProjectName: myproject
Stamp: A0fEb0de
Version: 1.0.0
XilinxPart: xczu5ev-sfvc784-2LV-e
"""


def write(tmp_path, text, name="hls4ml_config.yml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_nrp_config_exact(tmp_path):
    h = read_hls4ml_config(write(tmp_path, NRP))
    assert h.backend == "Vitis"
    assert h.part == "XCU250-FIGD2104-2L-E"
    assert h.board is None
    assert h.clock_period == 5.0 and h.clock_uncertainty == "27%"
    assert h.io_type == "parallel"
    assert h.model_precision == {"default": FixedType(16, 6)}
    assert (h.model_reuse, h.model_strategy) == (1, "latency")
    assert h.layer_precision == {}
    # every slot of every layer falls back to the model default, hls4ml's model_default_t
    assert h.precision("fc1", "accum", "Dense") == (FixedType(16, 6), "model_default")
    cfg = to_project_config(h)
    assert (cfg.io_type, cfg.strategy, cfg.reuse_factor, cfg.clock_period) == ("parallel", "latency", 1, 5.0)
    assert cfg.part == "XCU250-FIGD2104-2L-E" and cfg.default_precision == FixedType(16, 6)


def test_jmduarte_config_exact(tmp_path):
    h = read_hls4ml_config(write(tmp_path, JMDUARTE))
    assert h.backend == "Vivado" and h.part == "xc7z020clg400-1" and h.clock_period == 10.0
    assert (h.model_reuse, h.model_strategy) == (512, "resource")
    assert h.model_precision == {"default": FixedType(32, 16)}
    assert h.layer_precision["q_dense"] == {"bias": FixedType(7, 1), "weight": FixedType(7, 1)}
    assert h.layer_precision["input_1"] == {"default": FixedType(8, 8)}
    assert h.layer_reuse == {"batch_normalization": 512, "q_activation": 512, "q_dense": 512}
    # hls4ml's resolution: a slot the layer leaves open comes from the model default (accum too)
    assert h.precision("q_dense", "weight")[0] == FixedType(7, 1)
    assert h.precision("q_dense", "accum") == (FixedType(32, 16), "model_default")
    assert h.precision("q_dense", "result")[0] == FixedType(32, 16)
    assert h.precision("input_1", "result") == (FixedType(8, 8), "layer")       # string form: every slot
    assert h.precision("q_activation", "result")[0] == FixedType(7, 4)
    cfg = to_project_config(h)
    assert cfg.layers["q_dense"] == {"reuse_factor": 512,
                                     "precision": {"bias": FixedType(7, 1), "weight": FixedType(7, 1)}}
    assert cfg.layers["input_1"]["precision"] == {"result": FixedType(8, 8)}


def test_accelerator_board_modes_and_stable_softmax(tmp_path):
    h = read_hls4ml_config(write(tmp_path, RISH))
    assert h.board == "pynq-z2"
    assert h.part == "xc7z020clg400-1"          # Part wins over XilinxPart (the csynth report is for xc7z020)
    assert h.io_type == "stream"
    assert h.layer_precision["conv_act_0"]["result"] == FixedType(6, 0, False, "RND_CONV", "SAT")
    assert h.layer_precision["dense_0"]["weight"] == FixedType(6, 1)
    assert h.layer_strategy == {}                # 'Strategy: Stable' is the softmax implementation
    assert h.layer_extra["output_softmax"]["implementation"] == "stable"


def test_apply_to_graph_gives_hls4ml_types(tmp_path):
    h = read_hls4ml_config(write(tmp_path, JMDUARTE))
    t = FixedType(16, 6)
    g = Graph("m")
    g.add(Node("input_1", "input", [], (4,), types={"result": t}))
    g.add(Node("q_dense", "dense", ["input_1"], (3,), attrs={"n_in": 4, "n_out": 3},
               weights={"kernel": np.zeros((4, 3)), "bias": np.zeros(3)}, types={"result": t}))
    g.add(Node("q_activation", "activation", ["q_dense"], (3,), attrs={"activation": "relu"}, types={"result": t}))
    g.add(Node("softmax", "softmax", ["q_activation"], (3,), types={"result": t}))
    apply_to_graph(g, h)
    assert g["input_1"].types["result"] == FixedType(8, 8)
    d = g["q_dense"]
    assert d.types == {"result": FixedType(32, 16), "weight": FixedType(7, 1), "bias": FixedType(7, 1),
                       "accum": FixedType(32, 16)}
    assert (d.attrs["reuse_factor"], d.attrs["strategy"]) == (512, "resource")
    assert g["q_activation"].types["result"] == FixedType(7, 4)
    s = g["softmax"]
    assert s.types["exp_table"] == SOFTMAX_TABLE_DEFAULT == FixedType(18, 8, True, "RND", "SAT")
    assert s.types["inv_inp"] == SOFTMAX_TABLE_DEFAULT
    # accum from the model default -> ap_fixed<18 + ceil(log2 3), 8 + ceil(log2 3)>
    assert s.types["accum"] == FixedType(18 + math.ceil(math.log2(3)), 8 + 2)
    # inp_norm: the signed 7-bit input without its sign bit; the exp table is cut to 2**6 entries
    assert s.types["inp_norm"] == FixedType(6, 3, False)
    assert (s.attrs["exp_table_size"], s.attrs["inv_table_size"]) == (64, 1024)


def test_config_from_hls4ml_and_errors(tmp_path):
    cfg = config_from_hls4ml(write(tmp_path, NRP))
    assert cfg.part == "XCU250-FIGD2104-2L-E"
    with pytest.raises(ConfigError, match="not found"):
        read_hls4ml_config(tmp_path / "nope.yml")
    bad = NRP.replace("fixed<16,6>", "fixed<16>")
    with pytest.raises(ConfigError, match="Model.Precision"):
        read_hls4ml_config(write(tmp_path, bad, "bad.yml"))


CAL = Path("/work/shared/calibration")


@pytest.mark.skipif(not CAL.is_dir(), reason="calibration data not present")
def test_every_calibration_config_reads_and_matches_its_report_settings():
    import json
    n = 0
    for d in sorted(p for p in CAL.iterdir() if p.is_dir()):
        h = read_hls4ml_config(d / "hls4ml_config.yml")
        cs = json.loads((d / "csynth.json").read_text())
        assert h.clock_period == cs["top"]["clock_target_ns"], d.name
        # the report part is the config's Part or (old hls4ml) its XilinxPart: rishthakkar's c3ee66b config names
        # both and was synthesized for the XilinxPart one, 53d7b74 with the same pair for Part
        names = {str(h.raw.get(k, "")).replace("-", "").lower() for k in ("Part", "XilinxPart")}
        assert cs["part"].replace("-", "").lower() in names, d.name
        n += 1
    assert n == 32
