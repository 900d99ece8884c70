# Two commands set everything up on a fresh machine:  make demo  (then)  make test
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test test-slow fuzz install clean examples

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# PYTHONWARNINGS: setuptools' generic 'Editable installation' notice from the build backend stays off the screen
	PYTHONWARNINGS=ignore $(BIN)/pip install -q -e '.[test,dask,onnx]'
	# PyTorch (CPU wheel on this machine) for the gpu backend and its tests; optional
	$(BIN)/pip install -q 'torch==2.13.0' || echo "note: torch not installed; gpu-backend tests will be skipped"
	# Brevitas (quantization-aware PyTorch; needs torch) for the QONNX tests and examples/brevitas_digits.py
	$(BIN)/pip install -q 'brevitas==0.13.4' || echo "note: brevitas not installed; Brevitas QONNX tests will be skipped"
	touch $@

examples/digits_mlp.h5: examples/train_digits_mlp.py | $(VENV)/.installed
	$(BIN)/python examples/train_digits_mlp.py --out $@

demo: install examples/digits_mlp.h5
	$(BIN)/fpga-gen build examples/digits_mlp.h5 -o hls_projects/digits_mlp --tb-data examples/digits_x_test.npy --input-precision 'ap_ufixed<6,1>' --force
	$(BIN)/fpga-gen csim hls_projects/digits_mlp
	$(BIN)/python examples/check_digits.py --model examples/digits_mlp.h5 --project hls_projects/digits_mlp

# the other bundled examples, each into hls_projects/ (each exits 1 unless csim == emulator and accuracies agree)
examples: install
	$(BIN)/python examples/train_digits_cnn.py
	$(BIN)/python examples/train_digits_skip.py
	$(BIN)/python examples/float_digits_calibrate.py

test: install
	$(BIN)/python -m pytest -q

test-slow: install
	$(BIN)/python -m pytest -q -m slow

clean:
	rm -rf $(VENV) build dist *.egg-info

# long fuzz profile (>= 200 random models each; FPGA_GEN_FUZZ_EXAMPLES / FPGA_GEN_FUZZ_MIXED_EXAMPLES set the counts)
fuzz: install
	$(BIN)/python -m pytest -q -m slow tests/test_fuzz.py tests/test_fuzz_mixed.py
