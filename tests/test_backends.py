"""Backend selection, devices, the Numba backend's compilation cache, and numpy == numba on a
whole training step.

Selection through $MINIGRAD_BACKEND is tested in fresh interpreters (`sys.executable -c`), since
the variable is read once per process, on first use.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from numba.core.caching import NullCache
from numba.core.dispatcher import Dispatcher

import minigrad as mg
import minigrad.nn.functional as F
from minigrad.backends import NAMES, available, kernels_for, load

ROOT = Path(__file__).resolve().parent.parent
VALID_NAMES = "numpy, numba, cupy"


def run_python(code: str, backend: str | None = None) -> str:
    """Run `code` in a fresh interpreter with $MINIGRAD_BACKEND set to `backend` (or unset)."""
    env = {k: v for k, v in os.environ.items() if k != "MINIGRAD_BACKEND"}
    if backend is not None:
        env["MINIGRAD_BACKEND"] = backend
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture(autouse=True)
def restore_backend():
    """Tests here switch backends; leave the active one as it was."""
    previous = mg.get_backend()
    yield
    mg.set_backend(previous)


def cupy_status() -> str:
    return available()["cupy"]


# ------------------------------------------------------------------- selection by environment


def test_default_backend_is_numba_and_import_compiles_nothing():
    assert run_python("""
        import sys
        import minigrad as mg
        print("numba" in sys.modules, mg.get_backend())
    """) == "False numba"


def test_default_backend_is_numpy_where_numba_cannot_be_imported():
    assert run_python("""
        import sys
        sys.modules["numba"] = None  # `import numba` now raises ImportError
        import minigrad as mg
        print(mg.get_backend(), mg.backends.available()["numba"])
    """) == "numpy numba backend: Numba cannot be imported (import of numba halted; None in " \
        "sys.modules); pip install -U numba"


@pytest.mark.parametrize("value", ["numba", " Numba "])
def test_environment_variable_selects_the_backend(value):
    out = run_python("""
        import numpy as np
        import minigrad as mg
        from minigrad.backends import kernels_for
        print(mg.get_backend(), kernels_for(np).name)
    """, backend=value)
    assert out == "numba numba"


def test_environment_variable_is_read_on_first_use_not_at_import():
    out = run_python("""
        import os
        import minigrad as mg
        os.environ["MINIGRAD_BACKEND"] = "numba"  # after the import, before the first use
        mg.zeros(2)
        first = mg.get_backend()
        os.environ["MINIGRAD_BACKEND"] = "numpy"  # after the first use: too late
        print(first, mg.get_backend())
    """, backend="numpy")
    assert out == "numba numba"


def test_bogus_environment_variable_fails_on_first_use_not_at_import():
    out = run_python("""
        import minigrad as mg
        print("imported")
        try:
            mg.zeros(2)
        except ValueError as error:
            print(error)
    """, backend="bogus")
    imported, message = out.splitlines()
    assert imported == "imported"
    assert "'bogus'" in message and VALID_NAMES in message


# ---------------------------------------------------------------------------- selection in code


def test_set_backend_and_get_backend(host_backend):
    mg.set_backend(host_backend)
    assert mg.get_backend() == host_backend and type(mg.get_backend()) is str
    assert kernels_for(np) is load(host_backend)


def test_backend_context_restores_the_previous_backend():
    mg.set_backend("numpy")
    with mg.backend("numba") as active:
        assert active is load("numba") and mg.get_backend() == "numba"
        with mg.backend("numpy"):
            assert mg.get_backend() == "numpy"
        assert mg.get_backend() == "numba"
    assert mg.get_backend() == "numpy"


def test_backend_context_restores_the_previous_backend_after_an_exception():
    mg.set_backend("numba")
    with pytest.raises(KeyError, match="inside"), mg.backend("numpy"):
        assert mg.get_backend() == "numpy"
        raise KeyError("inside")
    assert mg.get_backend() == "numba"


@pytest.mark.parametrize("switch", [mg.set_backend, mg.backend, load],
                         ids=["set_backend", "backend", "load"])
def test_unknown_backend_lists_the_valid_names(switch):
    mg.set_backend("numba")
    # set_backend and load raise before `with` would need a context manager from them
    with pytest.raises(ValueError, match="'bogus'.*" + VALID_NAMES), switch("bogus"):
        pass
    assert mg.get_backend() == "numba"


@pytest.mark.parametrize("switch", [mg.set_backend, mg.backend], ids=["set_backend", "backend"])
def test_cupy_without_cupy_or_gpu_says_what_is_missing(switch):
    status = cupy_status()
    if status == "ok":
        pytest.skip("CuPy and a GPU are available here")
    mg.set_backend("numpy")
    with pytest.raises(RuntimeError) as info, switch("cupy"):
        pass
    message = str(info.value)
    assert message == status
    assert message.startswith("cupy backend: ")
    assert "CuPy is not installed" in message or "no CUDA GPU" in message
    assert mg.get_backend() == "numpy"


def test_available_reports_every_backend():
    status = available()
    assert list(status) == list(NAMES) == ["numpy", "numba", "cupy"]
    assert status["numpy"] == "ok" and status["numba"] == "ok"
    assert status["cupy"] == "ok" or status["cupy"].startswith("cupy backend: ")


# ------------------------------------------------------------------------------------- devices


def test_host_backends_keep_tensors_on_the_cpu(host_backend):
    with mg.backend(host_backend):
        t = mg.randn(2, 3)
        assert t.device == "cpu" and type(t.array) is np.ndarray
        assert F.conv2d(mg.randn(1, 1, 3, 3), mg.randn(1, 1, 2, 2)).device == "cpu"


@pytest.mark.parametrize("target", ["numpy", "numba", "cpu"])
def test_to_a_host_device_returns_the_same_tensor(target):
    with mg.backend("numpy"):
        t = mg.randn(2, 3, requires_grad=True)
        assert t.to(target) is t


def test_to_a_dtype_casts_differentiably():
    with mg.backend("numpy"):
        t = mg.tensor([1.5, -2.25], requires_grad=True)
        cast = t.to(mg.float64)
        assert cast.dtype == np.float64 and cast.tolist() == [1.5, -2.25]
        (cast * mg.tensor([3.0, 4.0], dtype=mg.float64)).sum().backward()
        assert t.grad.dtype == np.float32 and t.grad.tolist() == [3.0, 4.0]


def test_to_an_unknown_target_raises():
    with mg.backend("numpy"), pytest.raises(ValueError, match="'bogus'"):
        mg.zeros(2).to("bogus")


@pytest.mark.parametrize("target", ["cupy", "cuda"])
def test_to_the_gpu_without_cupy_or_gpu_says_why(target):
    status = cupy_status()
    if status == "ok":
        pytest.skip("CuPy and a GPU are available here")
    with mg.backend("numpy"), pytest.raises(RuntimeError, match="CuPy") as info:
        mg.zeros(2).to(target)
    assert str(info.value).endswith(status) and "'cuda' means the cupy backend" in str(info.value)


def test_mixing_devices_raises_a_clear_error():
    status = cupy_status()
    if status != "ok":
        pytest.skip(status)
    with mg.backend("numpy"):
        on_gpu, on_host = mg.ones(2).to("cupy"), mg.ones(2)
        assert on_gpu.device == "cuda" and on_host.device == "cpu"
        with pytest.raises(RuntimeError, match="different devices"):
            on_gpu + on_host
        with pytest.raises(RuntimeError, match="different devices"):
            F.linear(on_host.reshape(1, 2), mg.ones(3, 2).to("cupy"))


# ------------------------------------------------------------------------------ numba backend

NUMBA_KERNELS = ["_relu", "_relu_backward", "_transpose_images", "_input_spectra",
                 "_output_blocks", "_output_grad_spectra", "_col2im",
                 "_maxpool_forward", "_maxpool_backward", "_maxpool2x2_forward",
                 "_maxpool2x2_backward", "_avgpool_forward", "_avgpool_backward",
                 "_batch_norm_sums", "_batch_norm_apply", "_batch_norm_grad_sums",
                 "_batch_norm_grad_input",
                 "_group_norm_forward", "_group_norm_backward", "_group_norm_forward_nhwc",
                 "_group_norm_backward_nhwc", "_forward_rows", "_backward_rows",
                 "_sigmoid32", "_tanh32", "_silu32", "_silu_backward32", "_erf32",
                 "_gelu32", "_gelu_backward32", "_layer_norm_forward", "_layer_norm_backward",
                 "_planes_forward", "_planes_backward", "_convolve", "_weight_sums"]
NATIVE_PARTS = ["_relu_part", "_relu_backward_part", "_batch_norm_sums_part",
                "_batch_norm_apply_part", "_batch_norm_grad_sums_part",
                "_batch_norm_grad_input_part", "_sigmoid32_part", "_tanh32_part", "_silu32_part",
                "_silu_backward32_part", "_erf32_part", "_gelu32_part", "_gelu_backward32_part"]
NUMBA_MODULES = ["minigrad.backends.numba_backend", "minigrad.backends.winograd",
                 "minigrad.backends.numba_depthwise", "minigrad.backends.numba_planes",
                 "minigrad.backends.numba_direct"]


def layout_of(x: np.ndarray, source: str) -> np.ndarray:
    """x as plain NCHW, as channels-last memory, or as a strided slice (neither)."""
    if source == "sliced":
        return np.concatenate([x, x], axis=3)[..., ::2]
    if source == "channels_last":
        return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    return x


@pytest.mark.parametrize("source", ["nchw", "sliced", "channels_last"])
def test_relu_kernels_match_numpy_and_keep_the_layout(host_backend, source):
    rng = np.random.default_rng(0)
    x = layout_of(rng.standard_normal((3, 5, 4, 6)).astype(np.float32), source)
    x[0, 0, 0, :3] = [np.nan, np.inf, -np.inf]
    grad = layout_of(rng.standard_normal(x.shape).astype(np.float32), source)
    kernels = load(host_backend)
    out = kernels.relu(x)
    # an expectation of its own, element by element: not the reference's np.maximum
    expected = np.array([v if v > 0 or v != v else 0.0 for v in x.ravel().tolist()],
                        dtype=x.dtype).reshape(x.shape)
    np.testing.assert_array_equal(out, expected)  # NaN stays NaN, -inf becomes 0
    if source != "sliced":
        assert out.strides == x.strides
    expected = np.where(out <= 0, 0, grad)  # PyTorch's threshold_backward: NaN passes grad
    np.testing.assert_array_equal(kernels.relu_backward(grad, out), expected)


# The extremes of float32's exp: e^-x overflows below x = -88.7 and underflows above 87.3.
SIGMOID_EDGES = [-np.inf, -1e4, -104.0, -89.0, -88.7, -88.3, -87.0, -20.0, -1.0, -1e-30, -0.0,
                 0.0, 1e-30, 0.5, 15.0, 17.0, 87.0, 88.5, 89.0, 1e4, np.inf, np.nan]


def sigmoid_kernels_expected(x, grad):
    """sigmoid, silu and silu's backward in float64 by math.exp, value by value: an expectation
    independent of the kernels."""
    def sigmoid(v):
        return 1 / (1 + math.exp(-v)) if v > -700 else 0.0 if v == v else v
    s = np.array([sigmoid(v) for v in x.ravel().tolist()]).reshape(x.shape)
    x64, g64 = x.astype(np.float64), grad.astype(np.float64)
    with np.errstate(invalid="ignore"):
        return s, x64 * s, g64 * s * (1 + x64 * (1 - s))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("source", ["nchw", "sliced", "channels_last"])
def test_sigmoid_and_silu_kernels_match_float64_and_keep_the_layout(host_backend, source, dtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 5, 8, 6)) * 8
    x.ravel()[:len(SIGMOID_EDGES)] = SIGMOID_EDGES
    x = layout_of(x.astype(dtype), source)
    grad = layout_of(rng.standard_normal(x.shape).astype(dtype), source)
    kernels = load(host_backend)
    results = kernels.sigmoid(x), kernels.silu(x), kernels.silu_backward(grad, x)
    tolerance = 4 * np.finfo(dtype).eps
    for name, out, expected in zip(("sigmoid", "silu", "silu_backward"), results,
                                   sigmoid_kernels_expected(x, grad)):
        assert out.dtype == dtype and out.shape == x.shape, name
        if source != "sliced":
            assert out.strides == x.strides, name
        # relative to the largest term, |x| s or |grad| s (1 + |x|): the backward's 1 + x (1 - s)
        # cancels near x = -1.28, where float32 keeps only an absolute accuracy
        scale = np.abs(grad) * (1 + np.abs(x)) if name == "silu_backward" else np.maximum(
            1, np.abs(x)) if name == "silu" else np.ones(x.shape)
        finite = np.isfinite(expected)
        with np.errstate(invalid="ignore"):  # inf - inf, outside `finite`
            error = np.abs(out - expected)
        np.testing.assert_array_less(error[finite],
                                     (tolerance * scale + 1e-37)[finite], err_msg=name)
        np.testing.assert_array_equal(np.isnan(out), np.isnan(expected), err_msg=name)
        np.testing.assert_array_equal(out[~finite], expected[~finite], err_msg=name)
    limits = kernels.sigmoid(np.array([-np.inf, -1e4, 1e4, np.inf], dtype))
    assert list(limits) == [0, 0, 1, 1]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("source", ["nchw", "sliced", "channels_last"])
def test_gelu_kernels_match_float64_and_keep_the_layout(host_backend, source, dtype):
    """gelu and its backward against math.erf and math.exp value by value, across erf's clamp
    at |x| / sqrt 2 = 4 and exp's extremes; infinities and NaN as PyTorch gives them."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 5, 8, 6)) * 3
    clamp = 4 * math.sqrt(2)
    x.ravel()[:len(SIGMOID_EDGES) + 3] = SIGMOID_EDGES + [clamp, -clamp, -13.5]
    x = layout_of(x.astype(dtype), source)
    grad = layout_of(rng.standard_normal(x.shape).astype(dtype), source)
    kernels = load(host_backend)
    values, grads = x.astype(np.float64).ravel().tolist(), grad.astype(np.float64).ravel()
    cdf = np.array([0.5 * (1 + math.erf(v / math.sqrt(2))) for v in values]).reshape(x.shape)
    pdf = np.array([math.exp(-0.5 * v * v) / math.sqrt(2 * math.pi) if v == v else v
                    for v in values]).reshape(x.shape)
    x64 = x.astype(np.float64)
    with np.errstate(invalid="ignore"):  # -inf * 0 and inf * 0: NaN, as PyTorch gives
        expected = (x64 * cdf, grads.reshape(x.shape) * (cdf + x64 * pdf))
    scales = (np.maximum(1, np.abs(x64)), np.abs(grad) * (1 + np.abs(x64)))
    tolerance = 4 * np.finfo(dtype).eps
    for name, out, want, scale in zip(("gelu", "gelu_backward"),
                                      (kernels.gelu(x), kernels.gelu_backward(grad, x)),
                                      expected, scales):
        assert out.dtype == dtype and out.shape == x.shape, name
        if source != "sliced":
            assert out.strides == x.strides, name
        finite = np.isfinite(want)
        with np.errstate(invalid="ignore"):
            error = np.abs(out - want)
        np.testing.assert_array_less(error[finite], (tolerance * scale + 1e-37)[finite],
                                     err_msg=name)
        np.testing.assert_array_equal(np.isnan(out), np.isnan(want), err_msg=name)
        np.testing.assert_array_equal(out[~finite], want[~finite], err_msg=name)


# the compiled float32 loops of the Numba backend and how many input arrays each takes
FLOAT32_LOOPS = {"_sigmoid32": 1, "_tanh32": 1, "_silu32": 1, "_erf32": 1, "_gelu32": 1,
                 "_silu_backward32": 2, "_gelu_backward32": 2}


@pytest.mark.parametrize("name", list(FLOAT32_LOOPS))
def test_float32_loops_give_the_same_bits_wherever_their_output_lies(name):
    """An output right after an input in memory makes LLVM's run-time overlap check pick the
    loop's scalar version, which must compute what the vector version does. With fused
    multiply-adds GELU's backward did not, and a resumed training run drifted from an
    uninterrupted one."""
    from minigrad.backends import numba_backend

    kernel, inputs = getattr(numba_backend, name), FLOAT32_LOOPS[name]
    n = 1000
    rows = np.empty((inputs + 1, n), np.float32)  # inputs, then the output right after them
    rows[:inputs] = np.random.default_rng(4).standard_normal((inputs, n)) * 3
    apart = np.empty(n, np.float32)
    kernel(*[row.copy() for row in rows[:inputs]], apart, 0, 1)
    kernel(*rows, 0, 1)
    np.testing.assert_array_equal(rows[inputs], apart)


@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
@pytest.mark.parametrize("offset", [0, 16, -64])
def test_outputs_of_the_float32_loops_start_apart_from_their_inputs_modulo_4k(layout, offset):
    """An output starting a few bytes past an input modulo 4 KB makes the CPU take the output's
    stores for conflicts with the input's loads (GELU's backward ran 2.5-4x slower). The output
    is np.empty_like's array (shape, dtype, layout) placed at least 256 bytes away; sizes under
    a page are left alone. The inputs lie `offset` bytes from where np.empty_like put an array
    of their size a moment ago, so a plain np.empty_like would most likely alias them."""
    from minigrad.backends.numba_backend import _empty_apart

    (n, c, h, w), size = (8, 16, 5, 8), 8 * 16 * 5 * 8  # 20 KiB: five pages
    memory = np.empty(3 * size + 2048, np.float32)
    probe = np.empty((n, c, h, w), np.float32)
    near = (probe.ctypes.data + offset - memory.ctypes.data) % 4096 // 4
    del probe
    inputs = [memory[a:a + size].reshape(n, c, h, w) if layout == "nchw" else
              memory[a:a + size].reshape(n, h, w, c).transpose(0, 3, 1, 2)
              for a in (near, near + size + 1024)]  # the second 4 KB away from the first
    outputs = [_empty_apart(inputs[i % 2], *inputs) for i in range(4)]  # all alive at once
    for out in outputs:
        assert (out.shape, out.dtype, out.strides) == ((n, c, h, w), np.float32, inputs[0].strides)
        for array in inputs:
            assert 256 <= (out.ctypes.data - array.ctypes.data) % 4096 <= 4096 - 256
    small = np.empty((3, 4), np.float32)
    assert _empty_apart(small, small).strides == small.strides
    assert _empty_apart(np.float64(2), np.float64(2)).shape == ()  # what 0-d arrays give back


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("source", ["nchw", "sliced", "channels_last"])
def test_tanh_kernel_matches_float64_and_keeps_the_layout(host_backend, source, dtype):
    """Against math.tanh value by value, across the float32 kernel's switch at |x| = 0.625
    (nextafter on both sides) and exp's extremes; -0 keeps its sign, NaN stays NaN."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 5, 8, 6)) * 2
    switch = np.float32(0.625)
    edges = [switch, np.nextafter(switch, np.float32(0)), np.nextafter(switch, np.float32(1)),
             -switch, 1e-30, -1e-8, 9.0, -44.0, 45.0, 1e4]
    x.ravel()[:len(SIGMOID_EDGES) + len(edges)] = SIGMOID_EDGES + edges
    x = layout_of(x.astype(dtype), source)
    out = load(host_backend).tanh(x)
    assert out.dtype == dtype and out.shape == x.shape
    if source != "sliced":
        assert out.strides == x.strides
    expected = np.array([math.tanh(v) for v in x.ravel().tolist()]).reshape(x.shape)
    finite = ~np.isnan(expected)
    np.testing.assert_array_less(np.abs(out - expected)[finite],
                                 (2 * np.finfo(dtype).eps * np.abs(expected) + 1e-45)[finite])
    assert np.isnan(out[~finite]).all()
    zeros = out[x == 0]
    np.testing.assert_array_equal(np.signbit(zeros), np.signbit(x[x == 0]))


@pytest.mark.parametrize("values", [[3, -2, 0], [True, False]], ids=["int", "bool"])
def test_relu_of_non_float_arrays_matches_the_reference(host_backend, values):
    x = np.array(values)
    out = load(host_backend).relu(x)
    expected = load("numpy").relu(x)
    assert out.dtype == expected.dtype
    np.testing.assert_array_equal(out, expected)


# (2, 40, 8, 8) and (2, 3, 8, 16): H*W a multiple of 64, the tiled loop (40 rows: a partial tile)
@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (3, 5, 7, 2), (2, 40, 9, 33), (5, 64, 6, 6),
                                   (2, 40, 8, 8), (2, 3, 8, 16)])
@pytest.mark.parametrize("source", ["nchw", "sliced", "channels_last"])
def test_channels_last_keeps_the_values_and_lays_them_out_nhwc(host_backend, shape, source):
    x = layout_of(np.random.default_rng(0).standard_normal(shape).astype(np.float32), source)
    already = x.transpose(0, 2, 3, 1).flags.c_contiguous  # channels-last, or a single pixel
    out = load(host_backend).channels_last(x)
    np.testing.assert_array_equal(out, x)
    assert out.transpose(0, 2, 3, 1).flags.c_contiguous
    assert np.shares_memory(out, x) == already
    assert already == (source == "channels_last" or x.size == 1)


def numba_kernels() -> dict[str, Dispatcher]:
    import importlib

    return {name: value for module in NUMBA_MODULES
            for name, value in vars(importlib.import_module(module)).items()
            if isinstance(value, Dispatcher)}


def test_numba_kernels_cache_their_compiled_code_on_disk():
    kernels = numba_kernels()
    assert sorted(kernels) == sorted(NUMBA_KERNELS)
    for name, kernel in kernels.items():
        assert not isinstance(kernel._cache, NullCache), f"{name} is compiled without cache=True"
    from minigrad.backends.numba_backend import native_parts

    assert sorted(part.__wrapped__.__name__ for part in native_parts()) == sorted(NATIVE_PARTS)
    for part in native_parts():
        assert not isinstance(part.compile()._cache, NullCache)


WARMUP_REPORT = """
    import json
    import numpy as np
    from minigrad.backends import (load, numba_backend, numba_depthwise, numba_direct,
                                   numba_planes, winograd)
    from numba.core.dispatcher import Dispatcher
    kernels = {k: v for module in (numba_backend, winograd, numba_depthwise, numba_planes,
                                   numba_direct)
               for k, v in vars(module).items()
               if isinstance(v, Dispatcher)}
    assert not any(k.signatures for k in kernels.values()), "compiled before warmup()"
    parts = numba_backend.native_parts()
    assert not any(part._compiled for part in parts), "compiled before warmup()"
    load("numba").warmup()
    report = {name: {
        "float32": any(np.dtype(str(sig[0].dtype)) == np.float32 for sig in k.signatures),
        "hits": sum(k.stats.cache_hits.values()),
        "misses": sum(k.stats.cache_misses.values())} for name, k in kernels.items()}
    report.update({part.__wrapped__.__name__: {
        "float32": part._compiled is not None, "hits": part._compiled.cache_hits, "misses": 0}
        for part in parts})
    print(json.dumps(report))
"""


def test_warmup_compiles_every_kernel_and_a_later_process_loads_them_from_the_cache():
    run_python(WARMUP_REPORT)  # compiles, or loads, and leaves the cache filled
    report = json.loads(run_python(WARMUP_REPORT))
    assert sorted(report) == sorted(NUMBA_KERNELS + NATIVE_PARTS)
    for name, kernel in report.items():
        assert kernel["float32"], f"warmup() left {name} without a float32 signature"
        assert kernel["hits"] >= 1 and kernel["misses"] == 0, f"{name} recompiled: {kernel}"


def test_ops_run_on_the_active_backends_kernels(host_backend):
    with mg.backend(host_backend):
        assert kernels_for(np) is load(host_backend)
        x, w = mg.randn(1, 2, 4, 4, requires_grad=True), mg.randn(3, 2, 3, 3)
        assert F.conv2d(x, w).grad_fn.kernels is load(host_backend)
        assert F.max_pool2d(x, 2).grad_fn.kernels is load(host_backend)
        assert F.avg_pool2d(x, 2).grad_fn.kernels is load(host_backend)


# --------------------------------------------------------- a training step, numpy against numba


def training_step(backend: str, arrays: list[np.ndarray], targets: np.ndarray):
    """conv -> relu -> max pool -> flatten -> linear -> cross-entropy; (loss, gradients)."""
    with mg.backend(backend):
        x, w1, b1, w2, b2 = leaves = [mg.tensor(a, requires_grad=True) for a in arrays]
        hidden = F.max_pool2d(F.conv2d(x, w1, b1, stride=1, padding=1).relu(), 2)
        logits = F.linear(hidden.flatten(1), w2, b2)
        loss = -logits.log_softmax(dim=1)[np.arange(len(targets)), targets].mean()
        loss.backward()
        return loss.item(), [leaf.grad.numpy() for leaf in leaves]


def test_training_step_is_the_same_on_numpy_and_numba():
    rng = np.random.default_rng(0)
    shapes = [(4, 3, 8, 8), (5, 3, 3, 3), (5,), (6, 5 * 4 * 4), (6,)]
    arrays = [rng.standard_normal(shape) for shape in shapes]
    targets = rng.integers(0, 6, size=4)

    loss, grads = training_step("numpy", arrays, targets)
    numba_loss, numba_grads = training_step("numba", arrays, targets)
    assert np.isfinite(loss) and loss > 0
    np.testing.assert_allclose(numba_loss, loss, rtol=1e-10)
    for i, (ours, reference) in enumerate(zip(numba_grads, grads)):
        assert ours.shape == arrays[i].shape and np.abs(reference).max() > 0, i
        np.testing.assert_allclose(ours, reference, rtol=1e-10, atol=1e-12,
                                   err_msg=f"gradient of leaf {i}")


# ------------------------------------------------------------ the numba backend's worker threads


def blas_threads() -> int:
    from threadpoolctl import threadpool_info

    return max(lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas")


@pytest.mark.parametrize("geometry", [((2, 1), (1, 2), (1, 1)), ((1, 1), (1, 1), (1, 1)),
                                      ((1, 1), (2, 0), (2, 1))],
                         ids=["strided", "padded", "dilated"])
@pytest.mark.parametrize("workers", [1, 2, 3])
def test_convolutions_split_over_workers_match_the_reference(workers, geometry):
    """Uneven splits (5 images over 3 workers, chunks smaller than a part) give the reference's
    numbers for every conv kernel, with groups, stride, padding and dilation."""
    from minigrad.backends import numba_backend

    split = numba_backend.NumbaBackend(workers)
    reference = load("numpy")
    rng = np.random.default_rng(workers)
    x = rng.standard_normal((5, 4, 9, 7))
    weight = rng.standard_normal((6, 2, 3, 2))
    args = (*geometry, 2)
    out = reference.conv2d_forward(x, weight, *args)
    grad = rng.standard_normal(out.shape)
    np.testing.assert_allclose(split.conv2d_forward(x, weight, *args), out, rtol=1e-12)
    np.testing.assert_allclose(split.conv2d_backward_input(grad, weight, x.shape, *args),
                               reference.conv2d_backward_input(grad, weight, x.shape, *args),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(split.conv2d_backward_weight(grad, x, weight.shape, *args),
                               reference.conv2d_backward_weight(grad, x, weight.shape, *args),
                               rtol=1e-12)


@pytest.mark.parametrize("images, winograd_calls", [(7, 0), (8, 5)])
def test_winograd_takes_only_batches_with_tiles_enough_for_its_kernel_transforms(
        monkeypatch, images, winograd_calls):
    """64 channels need 32 output tiles (TILES_PER_CHANNEL 0.5): 7 images of 4x4 outputs (28
    tiles) go to im2col, 8 (32 tiles) to Winograd, for the forward and all three backward
    calls; the reference's numbers either way."""
    from minigrad.backends import numba_backend, winograd

    calls = []
    traced = winograd._input_spectra
    monkeypatch.setattr(winograd, "_input_spectra", lambda *a: calls.append(1) or traced(*a))
    numba = numba_backend.NumbaBackend(1)  # one thread: one call per chunk
    reference = load("numpy")
    rng = np.random.default_rng(images)
    x = rng.standard_normal((images, 64, 4, 4)).astype(np.float32)
    weight = rng.standard_normal((64, 64, 3, 3)).astype(np.float32)
    args = ((1, 1), (1, 1), (1, 1), 1)
    out = numba.conv2d_forward(x, weight, *args)
    grad = rng.standard_normal(out.shape).astype(np.float32)
    results = [out, numba.conv2d_backward_input(grad, weight, x.shape, *args),
               numba.conv2d_backward_weight(grad, x, weight.shape, *args),
               *numba.conv2d_backward(grad, x, weight, *args)]
    expected = [reference.conv2d_forward(x, weight, *args),
                reference.conv2d_backward_input(grad, weight, x.shape, *args),
                reference.conv2d_backward_weight(grad, x, weight.shape, *args)]
    assert len(calls) == winograd_calls  # one chunk per call; the joint backward's are two
    for result, want in zip(results, expected + expected[1:]):
        np.testing.assert_allclose(result, want, rtol=0, atol=1e-5 * np.abs(want).max())


@pytest.mark.parametrize("workers", [2, 3])
def test_winograd_chunks_taken_by_any_worker_match_the_reference_every_time(monkeypatch,
                                                                           workers):
    """Chunks of one or two images (4 or 6, a multiple of the workers), each taken by
    whichever worker is free: the reference's numbers, and the weight gradient (a sum over
    chunks) is the same on every call."""
    from minigrad.backends import numba_backend, winograd

    monkeypatch.setattr(winograd, "CHUNK_BYTES", 16 * 25 * 17 * 8 * 2)  # 2 images
    split = numba_backend.NumbaBackend(workers)
    reference = load("numpy")
    rng = np.random.default_rng(workers)
    x = rng.standard_normal((7, 8, 9, 10))
    weight = rng.standard_normal((9, 8, 3, 3))
    args = ((1, 1), (1, 1), (1, 1), 1)
    assert winograd.fits(weight.shape, *args[:1], *args[2:], (7, 9, 9, 10))
    assert len(split.winograd._chunks(7, 25, 17, x.dtype)) % workers == 0
    out = reference.conv2d_forward(x, weight, *args)
    grad = rng.standard_normal(out.shape)
    np.testing.assert_allclose(split.conv2d_forward(x, weight, *args), out, rtol=1e-10,
                               atol=1e-10)
    np.testing.assert_allclose(split.conv2d_backward_input(grad, weight, x.shape, *args),
                               reference.conv2d_backward_input(grad, weight, x.shape, *args),
                               rtol=1e-10, atol=1e-10)
    grad_w = [split.conv2d_backward_weight(grad, x, weight.shape, *args) for _ in range(4)]
    np.testing.assert_allclose(grad_w[0], reference.conv2d_backward_weight(grad, x, weight.shape,
                                                                          *args), rtol=1e-10)
    assert all(np.array_equal(g, grad_w[0]) for g in grad_w[1:])
    both = split.conv2d_backward(grad, x, weight, *args)  # one pass for the two
    np.testing.assert_allclose(both[0], reference.conv2d_backward_input(grad, weight, x.shape,
                                                                        *args),
                               rtol=1e-10, atol=1e-10)
    assert np.array_equal(both[1], grad_w[0])


def test_in_parts_runs_every_part_once_and_returns_results_in_order():
    from minigrad.backends.numba_workers import Workers

    backend = Workers(3)
    ran = []

    def work(part):  # uneven durations, so threads take parts out of order
        time.sleep(0.002 * (part % 3 == 0))
        ran.append(part)
        return part * part

    assert backend.in_parts(work, list(range(20))) == [p * p for p in range(20)]
    assert sorted(ran) == list(range(20))


def test_in_parts_raises_a_workers_error_after_every_part_has_stopped():
    from minigrad.backends.numba_workers import Workers

    backend = Workers(2)
    running = []

    def work(part):
        running.append(part)
        time.sleep(0.001)
        if part == 5:
            raise ValueError("part 5 failed")
        running.remove(part)

    with pytest.raises(ValueError, match="part 5 failed"):
        backend.in_parts(work, list(range(12)))
    assert running == [5]  # nothing still running when the error reached the caller


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_large_matmul_splits_over_workers_and_matches_numpy(monkeypatch, dtype):
    """Two workers (whatever the machine's CPUs) split the rows of `a` into two parts, each
    run once; the product equals a sum of products computed without BLAS, in float64."""
    from minigrad.backends.numba_backend import NumbaBackend

    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((301, 200)).astype(dtype), rng.standard_normal((200, 97))
    b = b.astype(dtype)
    backend = NumbaBackend(2)
    assert a.size * b.shape[1] >= backend.SPLIT_MATMUL_FLOPS  # above the split threshold
    spans = []
    in_parts = backend.workers.in_parts

    def spy(work, parts):
        def record(part):
            spans.append(part)
            return work(part)
        return in_parts(record, parts)

    monkeypatch.setattr(backend.workers, "in_parts", spy)
    product = backend.matmul(a, b)
    assert product.dtype == dtype
    # the rows, in two non-empty parts that meet, each computed once
    assert len(spans) == 2, spans
    (start, middle), (middle_again, stop) = sorted(spans)
    assert start == 0 < middle == middle_again < stop == len(a), spans
    expected = np.einsum("ik,kj->ij", a.astype(np.float64), b.astype(np.float64),
                         optimize=False)
    # entries are sums of 200 products of size ~1, added in another order than BLAS's
    tolerance = ({"rtol": 1e-5, "atol": 1e-4} if dtype == np.float32
                 else {"rtol": 1e-12, "atol": 1e-12})
    np.testing.assert_allclose(product, expected, **tolerance)


def test_in_parts_leaves_no_error_behind_when_the_callers_part_fails_too():
    """Every part fails, the caller's and a worker's: the call raises, and the next call,
    whose parts succeed, returns their results (no error of the first call left over)."""
    import threading

    from minigrad.backends.numba_workers import Workers

    backend = Workers(2)
    threads = set()

    def fail(part):
        threads.add(threading.current_thread().name)
        time.sleep(0.005)  # long enough for the worker to take the other part
        raise ValueError(f"part {part} failed")

    with pytest.raises(ValueError, match="failed"):
        backend.in_parts(fail, [0, 1])
    assert len(threads) == 2, threads  # both threads raised
    assert backend.in_parts(lambda part: part + 1, [0, 1, 2]) == [1, 2, 3]


def test_in_parts_wakes_sleeping_workers_and_runs_nested_calls_on_the_caller():
    """Calls further apart than the workers spin find them asleep; a call from inside a part
    (the workers are taken) runs on its own thread; every part runs once either way."""
    import threading

    from minigrad.backends.numba_workers import Workers

    backend = Workers(3)
    backend.SPIN_SECONDS = 1e-5
    threads = set()

    def work(part):
        threads.add(threading.current_thread().name)
        time.sleep(0.001)
        inner = backend.in_parts(lambda q: (q, threading.current_thread().name), [0, 1, 2])
        assert {name for _, name in inner} == {threading.current_thread().name}
        return part + sum(q for q, _ in inner)

    for _ in range(5):
        time.sleep(0.005)  # the workers have gone to sleep
        assert backend.in_parts(work, list(range(6))) == [p + 3 for p in range(6)]
    assert len(threads) == 3, threads


def test_in_parts_from_several_threads_at_once():
    import threading

    from minigrad.backends.numba_workers import Workers

    backend = Workers(2)
    failures = []

    def caller(offset):
        for _ in range(300):
            result = backend.in_parts(lambda p: p + offset, list(range(5)))
            if result != [p + offset for p in range(5)]:
                failures.append(result)

    callers = [threading.Thread(target=caller, args=(offset,)) for offset in range(3)]
    for thread in callers:
        thread.start()
    for thread in callers:
        thread.join(60)
    assert not failures and not any(thread.is_alive() for thread in callers)


def test_in_parts_in_a_forked_child_starts_its_own_workers():
    import multiprocessing

    from minigrad.backends.numba_workers import Workers

    backend = Workers(2)
    assert backend.in_parts(lambda p: p, [0, 1]) == [0, 1]  # the parent's workers run
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=lambda: queue.put(backend.in_parts(lambda p: 2 * p,
                                                                      [1, 2, 3])))
    child.start()
    child.join(60)
    assert child.exitcode == 0 and queue.get(timeout=5) == [2, 4, 6]


def native_parts_recorder():
    """A native part function that adds part + 1 to arguments[0]'s int64 array at its part and
    marks the start of every part in arguments[1]; part 0 of several waits, for up to
    arguments[3] turns of a spin, for part 1 to start, and records in arguments[2] whether it
    did meanwhile."""
    from numba import cfunc

    from minigrad.backends.numba_workers import PART, _atomic_load, _atomic_store, array_at

    @cfunc(PART)
    def record(arguments, part, parts):
        seen, started = array_at(arguments[0], parts, np.int64), array_at(arguments[1], parts,
                                                                          np.int64)
        _atomic_store(started, part, 1)
        if part == 0 and parts > 1:
            for _ in range(arguments[3]):
                if _atomic_load(started, 1):
                    array_at(arguments[2], 1, np.int64)[0] = 1
                    break
        seen[part] += part + 1
    return record


def test_in_native_parts_runs_every_part_once_on_the_threads():
    """Part 0, the caller's, sees part 1 start while it runs (a worker took it); every part
    runs once, in a call after the workers have gone to sleep and in nested calls too, which
    run on their own thread: nobody starts their part 1 while their part 0 waits 1M turns."""
    from minigrad.backends.numba_workers import Workers, address

    backend = Workers(3)
    backend.SPIN_SECONDS = 1e-5
    record = native_parts_recorder()

    def run(parts, turns):
        seen, started, concurrent = (np.zeros(parts, np.int64) for _ in range(3))
        backend.in_native_parts(record, parts, address(seen), address(started),
                                address(concurrent), turns)
        return seen, concurrent[0]

    for _ in range(3):
        time.sleep(0.005)  # the workers have gone to sleep
        # a bound of seconds, however busy the machine: a worker starts part 1 long before
        seen, concurrent = run(40, 10**10)
        assert np.array_equal(seen, np.arange(1, 41)) and concurrent == 1
    # a native call from a Python part (the workers are taken) runs on its own thread
    nested = backend.in_parts(lambda _: run(2, 10**6), [0, 1])
    assert all(np.array_equal(seen, [1, 2]) and concurrent == 0 for seen, concurrent in nested)
    seen, _ = run(1, 0)
    assert np.array_equal(seen, [1])


def test_in_native_parts_refuses_strided_arrays_and_too_many_arguments():
    from minigrad.backends.numba_workers import Workers, address

    with pytest.raises(ValueError, match="C-contiguous"):
        address(np.zeros((4, 4))[:, ::2])
    with pytest.raises(ValueError, match="at most 32 arguments, got 33"):
        Workers(2).in_native_parts(native_parts_recorder(), 2, *range(33))


@pytest.mark.parametrize("workers", [2, 3])
def test_passes_in_native_parts_are_the_one_thread_result(monkeypatch, workers):
    """float32 passes (the float32 loops, ReLU, batch norm) cut into several parts: on 2 or 3
    threads, exactly the numbers of the same parts on one thread (the parts do not depend on
    the threads), and the reference's."""
    from minigrad.backends.numba_backend import NumbaBackend

    rng = np.random.default_rng(workers)
    x = layout_of((rng.standard_normal((6, 16, 7, 5)) * 3 + 1).astype(np.float32),
                  "channels_last")
    grad = rng.standard_normal(x.shape).astype(np.float32)
    weight, bias = rng.standard_normal((2, 16)).astype(np.float32)
    serial, split, reference = NumbaBackend(1), NumbaBackend(workers), load("numpy")
    for backend in (serial, split):
        monkeypatch.setattr(backend, "NATIVE_PART_ELEMENTS", 512)  # 6 or 7 parts

    def run(backend):
        out = backend.relu(x)
        stats = backend.batch_norm_stats(x)
        normed = backend.batch_norm_forward(x, weight, bias, *stats, 1e-5)
        loops = [getattr(backend, name)(x) for name in ("sigmoid", "tanh", "silu", "gelu", "erf")]
        loops += [backend.silu_backward(grad, x), backend.gelu_backward(grad, x)]
        return (*loops, out, backend.relu_backward(grad, out), *stats, normed,
                *backend.batch_norm_backward(grad, x, weight, *stats, 1e-5, True,
                                             (True, True, True)))

    ours = run(split)
    for a, b in zip(ours, run(serial)):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(ours, run(reference)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_workers_run_blas_on_one_thread_and_restore_its_threads_after():
    from minigrad.backends.numba_workers import Workers

    backend = Workers(2)
    before = blas_threads()
    seen = backend.in_parts(lambda part: blas_threads(), [0, 1])
    assert seen == [1, 1]
    assert blas_threads() == before


@pytest.mark.parametrize("setting, expected", [("3", 3), (" 1 ", 1)])
def test_minigrad_num_threads_sets_the_workers(monkeypatch, setting, expected):
    from minigrad.backends.numba_workers import worker_count

    monkeypatch.setenv("MINIGRAD_NUM_THREADS", setting)
    assert worker_count() == expected


@pytest.mark.parametrize("setting", ["0", "two", "-1"])
def test_a_bad_minigrad_num_threads_is_refused_with_a_clear_error(monkeypatch, setting):
    from minigrad.backends.numba_workers import worker_count

    monkeypatch.setenv("MINIGRAD_NUM_THREADS", setting)
    with pytest.raises(ValueError, match=f"MINIGRAD_NUM_THREADS must be a positive integer, "
                                         f"got '{setting}'"):
        worker_count()


# -------------------------------------------------------------------------- the kernel interface


def kernel_names(cls) -> set[str]:
    return {name for name, value in vars(cls).items()
            if callable(value) and not name.startswith("_")}


def test_every_declared_kernel_has_a_reference_and_no_backend_adds_an_undeclared_one():
    from minigrad.backends.base import Backend
    from minigrad.backends.cupy_backend import CupyBackend
    from minigrad.backends.numba_backend import NumbaBackend
    from minigrad.backends.numpy_backend import NumpyBackend

    declared = kernel_names(Backend)
    assert {"matmul", "conv2d_backward", "batch_norm_forward", "erf", "scatter_add"} <= declared
    assert kernel_names(NumpyBackend) == declared  # the reference implements every one
    assert kernel_names(CupyBackend) <= declared
    assert kernel_names(NumbaBackend) - declared == {"warmup"}  # compiles, computes nothing


def test_erf_is_within_an_ulp_of_float64_erf_and_keeps_nan(host_backend):
    import math

    x = np.concatenate([np.linspace(-7, 7, 20001), np.geomspace(1e-300, 30, 2000),
                        -np.geomspace(1e-300, 30, 2000), [0.0, -0.0, 0.84375, 1.25, 1 / 0.35,
                                                          6.0, np.inf, -np.inf]])
    expected = np.array([math.erf(v) for v in x])
    out = load(host_backend).erf(x)
    assert out.dtype == np.float64
    np.testing.assert_array_max_ulp(out, expected, maxulp=1)
    assert np.signbit(load(host_backend).erf(np.array([-0.0]))[0])
    assert np.isnan(load(host_backend).erf(np.array([np.nan]))[0])
    single = load(host_backend).erf(x.astype(np.float32))
    assert single.dtype == np.float32
    np.testing.assert_allclose(single, expected.astype(np.float32), rtol=1e-6, atol=1e-7)
    assert np.signbit(load(host_backend).erf(np.array([-0.0], np.float32))[0])
    assert np.isnan(load(host_backend).erf(np.array([np.nan], np.float32))[0])
    channels_last = layout_of(np.linspace(-5, 5, 240, dtype=np.float32).reshape(2, 3, 5, 8),
                              "channels_last")
    out = load(host_backend).erf(channels_last)
    assert out.strides == channels_last.strides
    np.testing.assert_allclose(out, load("numpy").erf(channels_last), rtol=1e-6, atol=1e-7)


def test_scatter_add_adds_every_repeat_of_an_index(host_backend):
    target = np.zeros((3, 4))
    load(host_backend).scatter_add(target, (np.array([0, 2, 0, 0]), np.array([1, 3, 1, 2])),
                              np.array([1.0, 2.0, 3.0, 4.0]))
    expected = np.zeros((3, 4))
    expected[0, 1], expected[2, 3], expected[0, 2] = 4.0, 2.0, 4.0
    np.testing.assert_array_equal(target, expected)


@pytest.mark.parametrize("weighted", [True, False])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("source", ["nchw", "sliced", "channels_last"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(4, 6, 5, 3), (3, 16, 5, 3), (2, 16, 4, 4), (2, 80, 2, 2)],
                         ids=["rows-of-10", "rows-of-3", "rows-of-4", "rows-of-1"])
def test_batch_norm_kernels_match_the_reference(source, training, weighted, dtype, shape):
    """The compiled passes (channels-last input) and the reference (any layout) agree on the
    statistics, the output and all three gradients, in train and eval mode, whether the
    kernels take the pixels' channel vectors 10, 3 or 4 to a row (C = 6, or 16 with M = 45 or
    32) or one to a row (C over 64)."""
    rng = np.random.default_rng(0)
    channels = shape[1]
    x = layout_of((rng.standard_normal(shape) * 3 + 1).astype(dtype), source)
    grad = layout_of(rng.standard_normal(x.shape).astype(dtype), source)
    weight, bias = (rng.standard_normal((2, channels)).astype(dtype) if weighted
                    else (None, None))
    numba, reference = load("numba"), load("numpy")
    tolerance = {"rtol": 1e-5, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-11}
    if training:
        stats = numba.batch_norm_stats(x)
        for ours, theirs in zip(stats, reference.batch_norm_stats(x)):
            assert ours.dtype == np.float64 and ours.shape == (channels,)
            # the reference centres float32 data in float32, the compiled pass in float64
            np.testing.assert_allclose(ours, theirs, rtol=1e-6 if dtype == np.float32 else 1e-12)
    else:
        stats = rng.standard_normal(channels), rng.uniform(0.5, 2, channels)
    args = (weight, bias, *stats, 1e-5)
    out = numba.batch_norm_forward(x, *args)
    np.testing.assert_allclose(out, reference.batch_norm_forward(x, *args), **tolerance)
    assert out.dtype == dtype and out.strides == reference.batch_norm_forward(x, *args).strides
    needs = (True, weighted, weighted)
    backward = (weight, *stats, 1e-5, training, needs)
    for ours, theirs in zip(numba.batch_norm_backward(grad, x, *backward),
                            reference.batch_norm_backward(grad, x, *backward)):
        assert (ours is None) == (theirs is None)
        if ours is not None:
            np.testing.assert_allclose(ours, theirs, **tolerance)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_norm_statistics_keep_their_precision_far_from_zero(dtype):
    """One pass of shifted sums: data at 1e4 with unit spread, and a first pixel (the shift)
    100 standard deviations away, still give float64 statistics to 1e-9 of a two-pass float64
    computation (E[x^2] - E[x]^2 unshifted would lose every digit of the variance)."""
    rng = np.random.default_rng(0)
    x = (1e4 + rng.standard_normal((8, 3, 6, 5))).astype(dtype)
    x[0, :, 0, 0] += 100
    exact = x.astype(np.float64)
    mean = exact.mean((0, 2, 3))
    var = ((exact - mean.reshape(3, 1, 1)) ** 2).mean((0, 2, 3))
    ours = load("numba").batch_norm_stats(layout_of(x, "channels_last"))
    np.testing.assert_allclose(ours[0], mean, rtol=1e-12)
    np.testing.assert_allclose(ours[1], var, rtol=1e-9)
    # no first pixel to shift by: an empty batch gives the reference's NaNs
    empty = layout_of(np.zeros((0, 3, 2, 2), dtype), "channels_last")
    with np.errstate(invalid="ignore"):
        assert np.isnan(np.concatenate(load("numba").batch_norm_stats(empty))).all()


def group_norm_layout(x: np.ndarray, source: str) -> np.ndarray:
    """`layout_of` for any rank >= 2."""
    if source == "sliced":
        return np.concatenate([x, x], axis=-1)[..., ::2]
    if source == "channels_last":
        return np.moveaxis(np.ascontiguousarray(np.moveaxis(x, 1, -1)), -1, 1)
    return x


# (shape, groups): one group, one channel per group, no spatial extent, 3-D and 5-D input, and
# 527 pixels: partial sums of a head and two blocks of 256 values (rows), or of 64 pixels
GROUP_NORM_SHAPES = [((4, 6, 5, 3), 3), ((3, 6, 4, 5), 1), ((2, 6, 3, 7), 6), ((5, 12, 1, 1), 4),
                     ((3, 8), 2), ((2, 8, 9), 2), ((2, 4, 3, 2, 3), 2), ((2, 4, 17, 31), 2)]


@pytest.mark.parametrize("shape, groups", GROUP_NORM_SHAPES)
@pytest.mark.parametrize("weighted", [True, False])
@pytest.mark.parametrize("source", ["nchw", "sliced", "channels_last"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_group_norm_kernels_match_the_reference(shape, groups, source, weighted, dtype):
    """The compiled rows (C order, copies of other layouts) and channels-last blocks agree
    with the reference on the statistics, the output (channels-last input stays channels-last)
    and all three gradients, with and without d x."""
    rng = np.random.default_rng(0)
    x = group_norm_layout((rng.standard_normal(shape) * 3 + 1).astype(dtype), source)
    grad = group_norm_layout(rng.standard_normal(shape).astype(dtype), source)
    weight, bias = (rng.standard_normal((2, shape[1])).astype(dtype) if weighted
                    else (None, None))
    numba, reference = load("numba"), load("numpy")
    tolerance = {"rtol": 1e-5, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-11}
    out, mean, invstd = numba.group_norm_forward(x, weight, bias, groups, 1e-5)
    expected = reference.group_norm_forward(x, weight, bias, groups, 1e-5)
    np.testing.assert_allclose(out, expected[0], **tolerance)
    assert out.dtype == dtype
    if source == "channels_last":
        assert np.moveaxis(out, 1, -1).flags.c_contiguous
    for ours, theirs in zip((mean, invstd), expected[1:]):
        assert ours.dtype == np.float64 and ours.shape == (shape[0], groups)
        # the reference rounds float32 statistics to float32
        np.testing.assert_allclose(ours, theirs, rtol=1e-6 if dtype == np.float32 else 1e-12)
    for needs in (True, weighted, weighted), (False, weighted, True):
        ours = numba.group_norm_backward(grad, x, weight, mean, invstd, groups, needs)
        theirs = reference.group_norm_backward(grad, x, weight, *expected[1:], groups, needs)
        for name, a, b, needed in zip(("x", "weight", "bias"), ours, theirs, needs):
            assert (a is None) == (b is None) == (not needed), name
            if a is not None:
                assert a.dtype == dtype and a.shape == b.shape, name
                np.testing.assert_allclose(a, b, **tolerance, err_msg=name)


@pytest.mark.parametrize("x_source, grad_source", [("channels_last", "nchw"),
                                                    ("nchw", "channels_last"),
                                                    ("channels_last", "sliced")])
def test_group_norm_backward_takes_a_gradient_in_another_layout(x_source, grad_source):
    rng = np.random.default_rng(1)
    x = layout_of(rng.standard_normal((3, 6, 5, 4)), x_source)
    grad = layout_of(rng.standard_normal(x.shape), grad_source)
    numba, reference = load("numba"), load("numpy")
    _, mean, invstd = numba.group_norm_forward(x, None, None, 2, 1e-5)
    _, *stats = reference.group_norm_forward(x, None, None, 2, 1e-5)
    needs = (True, False, False)
    np.testing.assert_allclose(
        numba.group_norm_backward(grad, x, None, mean, invstd, 2, needs)[0],
        reference.group_norm_backward(np.ascontiguousarray(grad), x, None, *stats, 2, needs)[0],
        rtol=1e-11)


def record_parts(monkeypatch, backend) -> list:
    """A list that receives the parts of each `in_parts` call the backend's workers make."""
    calls, in_parts = [], backend.workers.in_parts

    def spy(work, parts):
        calls.append(parts)
        return in_parts(work, parts)

    monkeypatch.setattr(backend.workers, "in_parts", spy)
    return calls


@pytest.mark.parametrize("source", ["nchw", "channels_last"])
@pytest.mark.parametrize("workers", [2, 3])
def test_group_norm_split_over_workers_is_the_serial_result(monkeypatch, source, workers):
    """Rows (5 samples * 3 groups) or samples split into uneven parts, each run once, give
    exactly the serial kernels' numbers."""
    from minigrad.backends.numba_backend import NumbaBackend

    rng = np.random.default_rng(workers)
    x = layout_of(rng.standard_normal((5, 6, 4, 3)).astype(np.float32), source)
    grad = layout_of(rng.standard_normal(x.shape).astype(np.float32), source)
    weight, bias = rng.standard_normal((2, 6)).astype(np.float32)
    serial, split = NumbaBackend(1), NumbaBackend(workers)
    monkeypatch.setattr(split, "SPLIT_NORM_ELEMENTS", 1)
    calls = record_parts(monkeypatch, split)
    forward = split.group_norm_forward(x, weight, bias, 3, 1e-5)
    units = 5 if source == "channels_last" else 15  # samples, or (sample, group) rows
    spans = sorted(span for parts in calls for span in parts)  # parts that tile the rows
    assert len(spans) > 1 and spans[0][0] == 0 and spans[-1][1] == units, spans
    assert all(before[1] == after[0] for before, after in zip(spans, spans[1:])), spans
    for ours, theirs in zip(forward, serial.group_norm_forward(x, weight, bias, 3, 1e-5)):
        np.testing.assert_array_equal(ours, theirs)
    backward = (x, weight, *forward[1:], 3, (True, True, True))
    for ours, theirs in zip(split.group_norm_backward(grad, *backward),
                            serial.group_norm_backward(grad, *backward)):
        np.testing.assert_array_equal(ours, theirs)


# (shape, normalised dims): rows of one value, of 300 values (a head of 44 and a block of 256 in
# the partial sums), over two dims, and 600 rows (three parts of LAYER_NORM_ROWS for the
# weight and bias sums)
LAYER_NORM_SHAPES = [((3, 4, 5), 1), ((2, 1), 1), ((4, 300), 1), ((2, 3, 4, 5), 2),
                     ((600, 7), 1)]


@pytest.mark.parametrize("shape, ndim", LAYER_NORM_SHAPES)
@pytest.mark.parametrize("affine", ["both", "weight", "none"])
@pytest.mark.parametrize("source", ["c_order", "sliced"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layer_norm_kernels_match_the_reference(shape, ndim, affine, source, dtype):
    """The compiled rows (C-order x; other layouts take the reference) agree with the
    reference on the output, the statistics (x's dtype, dims kept) and all three gradients,
    with and without d x; a gradient in another layout is taken as it is."""
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
    x = np.concatenate([x, x], axis=-1)[..., ::2] if source == "sliced" else x
    grad = np.asfortranarray(rng.standard_normal(shape).astype(dtype))
    normalized = shape[len(shape) - ndim:]
    weight, bias = rng.standard_normal((2, *normalized)).astype(dtype)
    weight, bias = {"both": (weight, bias), "weight": (weight, None), "none": (None, None)}[affine]
    numba, reference = load("numba"), load("numpy")
    tolerance = {"rtol": 1e-5, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-11,
                                                                         "atol": 1e-13}
    out, mean, invstd = numba.layer_norm_forward(x, weight, bias, ndim, 1e-5)
    expected = reference.layer_norm_forward(x, weight, bias, ndim, 1e-5)
    assert out.dtype == dtype and out.shape == shape
    np.testing.assert_allclose(out, expected[0], **tolerance)
    for ours, theirs in zip((mean, invstd), expected[1:]):
        assert ours.dtype == dtype and ours.shape == theirs.shape
        # float32 sums in another order: a mean near 0 keeps an absolute accuracy only
        np.testing.assert_allclose(ours, theirs, **tolerance)
    wanted = affine != "none"
    for needs in (True, wanted, wanted), (False, wanted, affine == "both"):
        ours = numba.layer_norm_backward(grad, x, weight, mean, invstd, ndim, needs)
        theirs = reference.layer_norm_backward(grad, x, weight, *expected[1:], ndim, needs)
        for name, a, b, needed in zip(("x", "weight", "bias"), ours, theirs, needs):
            assert (a is None) == (b is None) == (not needed), name
            if a is not None:
                assert a.dtype == dtype and a.shape == b.shape, name
                np.testing.assert_allclose(a, b, **tolerance, err_msg=name)


@pytest.mark.parametrize("workers", [1, 3])
def test_layer_norm_split_over_workers_is_the_serial_result(monkeypatch, workers):
    """Rows in parts of 4 (the weight and bias gradients summed per part, then in order),
    split over the threads, give exactly the serial kernels' numbers on one thread."""
    from minigrad.backends.numba_backend import NumbaBackend

    rng = np.random.default_rng(workers)
    x, grad = rng.standard_normal((2, 23, 6, 5)).astype(np.float32)
    weight, bias = rng.standard_normal((2, 6, 5)).astype(np.float32)
    serial, split = NumbaBackend(1), NumbaBackend(workers)
    for backend in serial, split:
        monkeypatch.setattr(backend, "LAYER_NORM_ROWS", 4)
    monkeypatch.setattr(split, "SPLIT_NORM_ELEMENTS", 1)
    spans = record_parts(monkeypatch, split)
    forward = split.layer_norm_forward(x, weight, bias, 2, 1e-5)
    for ours, theirs in zip(forward, serial.layer_norm_forward(x, weight, bias, 2, 1e-5)):
        np.testing.assert_array_equal(ours, theirs)
    backward = (x, weight, *forward[1:], 2, (True, True, True))
    for ours, theirs in zip(split.layer_norm_backward(grad, *backward),
                            serial.layer_norm_backward(grad, *backward)):
        np.testing.assert_array_equal(ours, theirs)
    # the backward's spans: whole parts of 4 rows tiling the 23 rows
    assert spans[-1][0][0] == 0 and spans[-1][-1][1] == 23 and len(spans[-1]) > 1
    assert all(start % 4 == 0 for start, _ in spans[-1]), spans[-1]


def test_no_module_above_the_backends_imports_a_device_library():
    """numba, cupy and cupyx are the backends' business: the engine, ops and layers reach
    them only through kernels."""
    import ast

    offenders = []
    for path in sorted((ROOT / "minigrad").rglob("*.py")):
        if "backends" in path.relative_to(ROOT / "minigrad").parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.name}:{node.lineno} {name}" for name in names
                          if name.split(".")[0] in ("numba", "cupy", "cupyx")]
    assert offenders == []
