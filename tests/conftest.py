import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# TensorFlow's oneDNN convolution (on by default on x86) computes some strided convolutions wrongly: a (1, 3)
# kernel with strides (1, 2) on a (5, 4, 1) image gives 6.0001 and 0 for rows whose windows are all equal (found
# by tests/test_fuzz_mixed.py; tests/test_fuzz_mixed.py::test_tensorflow_reference_convolution pins it).  QKeras
# is the reference of the exactness tests, so TensorFlow runs its own (Eigen) kernels here.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
