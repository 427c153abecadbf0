"""The fused CPU kernels: built where a compiler is, equal to the Python cells, and never needed."""
import contextlib
import os
import shutil
import subprocess
import sys
import textwrap

import pytest
import torch

import rnnkit
from rnnkit import kernels
from rnnkit.bptt.schedule import Schedule
from rnnkit.cells import CELLS, LN_CELLS
from rnnkit.cells.fused import fused

HAVE_CXX = any(shutil.which(c) for c in (os.environ.get("CXX"), "c++", "g++", "clang++") if c)


def need_kernels():
    if not kernels.available():
        pytest.skip(f"fused kernels {kernels.status()}")


@pytest.mark.skipif(not HAVE_CXX, reason="no C++ compiler on this machine")
def test_kernels_build_where_a_compiler_is():
    assert kernels.available(), kernels.status()
    assert kernels.status().startswith("built: ")


@pytest.mark.parametrize("cell", [CELLS["LSTM"], LN_CELLS["LSTM"], CELLS["GRU"], LN_CELLS["GRU"],
                                  CELLS["RNN_TANH"], CELLS["RNN_RELU"], LN_CELLS["RNN_RELU"]],
                         ids=["lstm", "lstm_ln", "gru", "gru_ln", "rnn_tanh", "rnn_relu", "rnn_ln"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fused_variant_is_picked_for_cpu_floats_only(cell, dtype):
    need_kernels()
    x = torch.zeros(2, 3, dtype=dtype)
    assert type(fused(cell, x)).__name__.startswith("Fused")
    assert fused(cell, x.to(torch.bfloat16)) is cell
    with kernels.disabled():
        assert fused(cell, x) is cell
    assert fused(CELLS["GRU_RESET_BEFORE"], x) is CELLS["GRU_RESET_BEFORE"]   # no kernel for it


def _activations(a):
    """Run a (1, 4H) pre-activation through the LSTM kernel; returns the activated gates."""
    k = kernels.get(a)
    H = a.shape[1] // 4
    acts, cp = a.clone(), torch.zeros(1, H, dtype=a.dtype)
    c, h, tc = (torch.empty(1, H, dtype=a.dtype) for _ in range(3))
    k.lstm_fwd(b=1, H=H, acts=acts, cp=cp, ld_cp=H, c=c, h=h, tc=tc)
    return acts


def test_float32_sigmoid_and_tanh_match_torch_over_the_whole_range():
    need_kernels()
    H = 4096
    v = torch.cat([torch.linspace(-30, 30, H - 8),
                   torch.tensor([-1e4, -100.0, -88.5, -1e-30, 0.0, 1e-30, 88.5, 1e4])])
    a = torch.cat([v, v, v, v]).unsqueeze(0)
    acts = _activations(a)[0]
    sig, tanh = acts[:H], acts[2 * H:3 * H]
    torch.testing.assert_close(sig, torch.sigmoid(v), atol=1e-7, rtol=3e-7)
    torch.testing.assert_close(tanh, torch.tanh(v), atol=1e-7, rtol=3e-7)
    small = v.abs() < 1e-3                               # tanh x ≈ x: relative accuracy kept
    torch.testing.assert_close(tanh[small], torch.tanh(v[small]), atol=0, rtol=1e-6)
    nan = _activations(torch.full((1, 8), float("nan")))
    assert nan.isnan().all()


CONFIGS = {
    "plain": {},
    "layer_norm": {"layer_norm": True},
    "rec_dropout": {"recurrent_dropout": 0.3, "num_layers": 2, "bidirectional": True},
    "ln_rec_dropout": {"layer_norm": True, "recurrent_dropout": 0.3, "learn_init": True,
                       "num_layers": 2, "bidirectional": True},
    "ln_options": {"layer_norm": True, "recurrent_dropout": 0.3, "zoneout": (0.1, 0.2),
                   "learn_init": True, "num_layers": 2, "bidirectional": True},
    "options": {"recurrent_dropout": 0.3, "zoneout": 0.2, "input_dropout": 0.1,
                "weight_dropout": 0.2, "num_layers": 2, "bidirectional": True},
}


def _train_step(m, x, reset):
    torch.manual_seed(1)                      # the same masks on both paths
    res = m(x, reset=reset)
    out = res[0].data if isinstance(res[0], torch.nn.utils.rnn.PackedSequence) else res[0]
    h, c = res[1] if isinstance(res[1], tuple) else (res[1], res[1])
    (out.sin().sum() + h.pow(2).sum() + c.cos().sum()).backward()
    got = [out.detach(), h.detach(), c.detach()] + [p.grad.clone() for p in m.parameters()]
    m.zero_grad()
    return got


GRU_CONFIGS = {"gru_plain": {}, "gru_options": dict(CONFIGS["options"]),
               "gru_rec_dropout": dict(CONFIGS["rec_dropout"])}
RNN_CONFIGS = {"rnn_tanh": dict(CONFIGS["rec_dropout"]),
               "rnn_relu": {"nonlinearity": "relu", **CONFIGS["rec_dropout"]},
               "rnn_options": dict(CONFIGS["options"]),
               "rnn_ln": {"layer_norm": True, **CONFIGS["rec_dropout"]},
               "rnn_relu_ln": {"nonlinearity": "relu", "layer_norm": True}}
GRU_CONFIGS["gru_ln"] = {"layer_norm": True, **CONFIGS["rec_dropout"]}
GRU_CONFIGS["gru_ln_options"] = {"layer_norm": True, **CONFIGS["options"]}


@pytest.mark.parametrize("config", list(CONFIGS) + list(GRU_CONFIGS) + list(RNN_CONFIGS))
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 2e-5)])
@pytest.mark.parametrize("packed", [False, True])
def test_fused_and_python_paths_agree(config, dtype, tol, packed):
    """A training step (outputs, final states, every gradient) through both paths."""
    need_kernels()
    if config in GRU_CONFIGS:
        m = rnnkit.GRU(5, 16, **GRU_CONFIGS[config]).to(dtype)
    elif config in RNN_CONFIGS:
        m = rnnkit.RNN(5, 16, **RNN_CONFIGS[config]).to(dtype)
    else:
        m = rnnkit.LSTM(5, 16, **CONFIGS[config]).to(dtype)
    x = torch.randn(7, 4, 5, dtype=dtype)
    reset = None
    if packed:
        x = torch.nn.utils.rnn.pack_padded_sequence(x, [7, 3, 6, 1], enforce_sorted=False)
    else:
        reset = torch.zeros(4, 7, dtype=torch.bool)
        reset[1, 3] = reset[2, 5] = True
    fast = _train_step(m, x, reset)
    with kernels.disabled():
        slow = _train_step(m, x, reset)
    for a, b in zip(fast, slow):
        scale = b.abs().max().clamp_min(1)
        assert ((a - b).abs().max() / scale).item() < tol


@pytest.mark.parametrize("cls,c_kind", [(rnnkit.LSTM, "strided"), (rnnkit.LSTM, "broadcast"),
                                         (rnnkit.GRU, None)])
def test_non_contiguous_initial_states_read_and_get_their_gradients(cls, c_kind):
    need_kernels()
    m = cls(3, 4)
    x = torch.randn(5, 2, 3)
    h0 = torch.randn(4, 2, 1).permute(2, 1, 0).requires_grad_()      # dense, columns strided
    if c_kind == "strided":
        c0 = torch.randn(4, 2, 1).permute(2, 1, 0).requires_grad_()
        c_in = c0
    else:
        c0 = torch.randn(1, 1, 4).requires_grad_()                   # rows broadcast: stride 0
        c_in = c0.expand(1, 2, 4)
    hx = (h0, c_in) if cls is rnnkit.LSTM else h0
    got = []
    for ctx in (contextlib.nullcontext(), kernels.disabled()):
        h0.grad = c0.grad = None
        with ctx:
            out, fin = m(x, hx)
            fin = fin if isinstance(fin, tuple) else (fin,)
            (out.sin().sum() + sum(f.pow(2).sum() for f in fin)).backward()
        got.append([out.detach(), h0.grad] + ([c0.grad] if cls is rnnkit.LSTM else []))
    for a, b in zip(*got):
        torch.testing.assert_close(a, b)


def test_one_direction_gradcheck_through_the_kernels():
    need_kernels()
    cell, H = LN_CELLS["LSTM"], 3
    sched = Schedule([3, 3, 2, 1], reverse=True)
    d = torch.float64
    gi = torch.randn(sched.N, 4 * H, dtype=d, requires_grad=True)
    w_hh = (torch.randn(4 * H, H, dtype=d) * 0.5).requires_grad_()
    h0 = [torch.randn(3, H, dtype=d, requires_grad=True) for _ in range(2)]
    params = [torch.randn(4 * H, dtype=d, requires_grad=True), torch.randn(4 * H, dtype=d, requires_grad=True),
              torch.randn(H, dtype=d, requires_grad=True), torch.randn(H, dtype=d, requires_grad=True)]
    assert type(fused(cell, gi)).__name__ == "FusedLayerNormLSTMMath"

    def f(gi, w_hh, h, c, *ps):
        out, fin = rnnkit.bptt.function.run(cell, sched, gi, None, w_hh, None, None, (h, c), params=ps)
        return (out, *fin)

    assert torch.autograd.gradcheck(f, (gi, w_hh, *h0, *params))


def _python(code, **env):
    e = {**os.environ, **env}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env=e, timeout=300)


CHECK = """
    import warnings, torch, rnnkit
    from rnnkit import kernels
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        torch.manual_seed(0)
        m = rnnkit.LSTM(3, 4, layer_norm=True)
        out = m(torch.randn(5, 2, 3))[0]
        out.sum().backward()
    print(kernels.available(), "|", kernels.status(), "|", [str(x.message) for x in w])
"""


def test_switched_off_by_environment(tmp_path):
    r = _python(CHECK, RNNKIT_KERNELS="0", RNNKIT_KERNEL_CACHE=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("False | off (RNNKIT_KERNELS=0) | []")
    assert not list(tmp_path.iterdir())


def test_a_failed_build_warns_once_and_falls_back(tmp_path):
    bad = tmp_path / "bad-cxx"
    bad.write_text("#!/bin/sh\necho 'no such compiler' >&2\nexit 3\n")
    bad.chmod(0o755)
    r = _python(CHECK, CXX=str(bad), RNNKIT_KERNEL_CACHE=str(tmp_path / "cache"))
    assert r.returncode == 0, r.stderr
    avail, status, warned = r.stdout.split(" | ")
    assert avail == "False" and "failed (3)" in status and "no such compiler" in status
    assert warned.count("using the Python cells") == 1


@pytest.mark.skipif(not HAVE_CXX, reason="no C++ compiler on this machine")
def test_build_is_cached_by_content_and_old_builds_pruned(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    for i in range(6):                                        # builds of other sources, oldest first
        old = cache / f"rnnkit-kernels-old{i}.so"
        old.write_bytes(b"")
        os.utime(old, (1_000_000 + i, 1_000_000 + i))
    r1 = _python(CHECK, RNNKIT_KERNEL_CACHE=str(cache))
    assert r1.returncode == 0 and r1.stdout.startswith("True | built: "), r1.stdout + r1.stderr
    built = r1.stdout.split("built: ")[1].split(" |")[0].strip()
    kept = sorted(p.name for p in cache.iterdir())
    name = os.path.basename(built)
    assert kept == sorted([name, name + ".sha256"]
                          + [f"rnnkit-kernels-old{i}.so" for i in (3, 4, 5)])
    for i in (3, 4, 5):
        (cache / f"rnnkit-kernels-old{i}.so").unlink()
    files = sorted(cache.iterdir())
    assert [p.name for p in files] == [name, name + ".sha256"]   # no temporary file beside them
    lib = cache / name
    stamp = lib.stat().st_mtime_ns
    r2 = _python(CHECK, RNNKIT_KERNEL_CACHE=str(cache))
    assert r2.returncode == 0 and sorted(cache.iterdir()) == files
    assert lib.stat().st_mtime_ns == stamp                    # loaded, not rebuilt
    whole = lib.read_bytes()
    lib.write_bytes(whole[:1000])                             # cut short (a full disk, a copy)
    r3 = _python(CHECK, RNNKIT_KERNEL_CACHE=str(cache))       # loading it died of SIGBUS
    assert r3.returncode == 0 and r3.stdout.startswith("True | built: "), r3.stdout + r3.stderr
    assert lib.read_bytes() == whole


@pytest.mark.parametrize("make,loop", [(lambda: rnnkit.LSTM(5, 8, bidirectional=True), "FusedLSTMMath"),
                                       (lambda: rnnkit.GRU(5, 8, recurrent_dropout=0.2), "FusedGRUMath"),
                                       (lambda: rnnkit.LSTM(5, 8, layer_norm=True, recurrent_dropout=0.2),
                                        "FusedLayerNormLSTMMath"),
                                       (lambda: rnnkit.RNN(5, 8, nonlinearity="relu"), "FusedVanillaMath")])
def test_whole_time_loop_runs_where_it_can_and_steps_where_it_cannot(make, loop, monkeypatch):
    """Full and packed batches, both directions, take the compiled loop; resets (and zoneout)
    take the Python loop of step kernels."""
    need_kernels()
    import rnnkit.cells.fused as fused_mod
    cls = getattr(fused_mod, loop)
    calls = {"loop": 0, "step": 0}
    real_loop, real_step = cls.forward_loop, cls.forward_step

    def count_loop(self, *a):
        calls["loop"] += 1
        return real_loop(self, *a)

    def count_step(self, *a):
        calls["step"] += 1
        return real_step(self, *a)

    monkeypatch.setattr(cls, "forward_loop", count_loop)
    monkeypatch.setattr(cls, "forward_step", count_step)
    m = make()
    x = torch.randn(6, 3, 5)
    m(x)
    assert calls["loop"] == m.num_directions and calls["step"] == 0
    calls.update(loop=0, step=0)
    m(x, lengths=torch.tensor([6, 2, 4]))
    assert calls["loop"] == m.num_directions and calls["step"] == 0
    calls.update(loop=0, step=0)
    m(x, reset=torch.zeros(3, 6, dtype=torch.bool))
    assert calls["loop"] == 0 and calls["step"] == 6 * m.num_directions


def test_without_a_usable_gemm_the_step_kernels_run_and_agree(monkeypatch):
    need_kernels()
    m = rnnkit.LSTM(5, 8, layer_norm=True, recurrent_dropout=0.2)
    x = torch.randn(6, 3, 5)
    whole = _train_step(m, x, None)
    k = kernels.get(x)
    monkeypatch.setattr(k, "gemm", None)
    steps = _train_step(m, x, None)
    for a, b in zip(whole, steps):
        torch.testing.assert_close(a, b, rtol=2e-5, atol=2e-6)


def test_kernels_command_reports_the_path(tmp_path):
    r = subprocess.run([sys.executable, "-m", "rnnkit.cli.main", "kernels", "--json"],
                       capture_output=True, text=True, timeout=300,
                       env={**os.environ, "RNNKIT_KERNELS": "0"})
    assert r.returncode == 1 and '"status": "off (RNNKIT_KERNELS=0)"' in r.stdout
    if HAVE_CXX:
        r = subprocess.run([sys.executable, "-m", "rnnkit.cli.main", "kernels"], capture_output=True,
                           text=True, timeout=300)
        assert r.returncode == 0 and "time_loops    True" in r.stdout, r.stdout + r.stderr


def test_every_declared_kernel_is_in_the_manifest_and_callable():
    """The manifest the library exports lists every RK_KERNEL of the sources, with the argument
    list of its RK_ARGS_ declaration, and each is a callable of both dtypes."""
    import re
    need_kernels()
    src = "".join((kernels.HERE / f).read_text() for f in kernels.SOURCES)
    declared = set(re.findall(r"^RK_KERNEL\((\w+)\)", src, re.M))
    for dt in (torch.float32, torch.float64):
        k = kernels.get(torch.zeros(1, dtype=dt))
        assert set(k.manifest) == declared
        for name, args in k.manifest.items():
            assert callable(getattr(k, name)) and len(args) >= 2, name
    m = kernels.get(torch.zeros(1)).manifest
    assert m["lstm_fwd"] == (("i64", "b"), ("i64", "H"), ("out", "acts"), ("in", "cp"),
                             ("i64", "ld_cp"), ("out", "c"), ("out", "h"), ("out", "tc"))
    assert m["lstm_fwd_loop"][:6] == (("addr", "gemm"), ("i64", "n_steps"), ("plan", "plan"),
                                      ("i64", "H"), ("in", "w_hh_t"), ("opt", "mask"))


def _lstm_fwd_args(dt=torch.float32, b=2, H=3):
    acts = torch.randn(b, 4 * H, dtype=dt)
    cp, c, h, tc = (torch.zeros(b, H, dtype=dt) for _ in range(4))
    return dict(b=b, H=H, acts=acts, cp=cp, ld_cp=H, c=c, h=h, tc=tc)


@pytest.mark.parametrize("change,message", [
    (dict(tc=None), "argument 'tc' expects a float32 CPU tensor, got NoneType None"),
    (dict(c=torch.zeros(2, 3, dtype=torch.float64)),
     "argument 'c' expects a float32 CPU tensor, got a float64 tensor on cpu"),
    (dict(acts=12345), "argument 'acts' expects a float32 CPU tensor, got int 12345"),
    (dict(H=3.0), "argument 'H' expects an int, got float 3.0"),
    (dict(H=None), "argument 'H' expects an int, got NoneType None"),
])
def test_a_wrong_argument_by_name_is_a_clear_error(change, message):
    need_kernels()
    k = kernels.get(torch.zeros(1))
    args = _lstm_fwd_args()
    before = args["acts"].clone() if isinstance(args["acts"], torch.Tensor) else None
    args.update(change)
    with pytest.raises(TypeError) as e:
        k.lstm_fwd(**args)
    assert str(e.value) == "kernel lstm_fwd (float32): " + message
    if isinstance(args["acts"], torch.Tensor):
        assert torch.equal(args["acts"], before)                # nothing ran


def test_a_missing_or_unknown_argument_is_a_clear_error():
    need_kernels()
    k = kernels.get(torch.zeros(1))
    args = _lstm_fwd_args()
    del args["tc"]
    missing = "kernel lstm_fwd \\(float32\\): argument 'tc' \\(out\\) missing"
    with pytest.raises(TypeError, match=missing):
        k.lstm_fwd(**args)
    with pytest.raises(TypeError, match="unexpected keyword argument 'tanh_c'"):
        k.lstm_fwd(**args, tanh_c=torch.zeros(2, 3))
    with pytest.raises(TypeError, match="kernel lstm_fwd: 8 positional arguments .* got 3"):
        k.lstm_fwd(1, 2, 3)
    opt = kernels.get(torch.zeros(1)).manifest["gru_fwd_loop"]
    assert ("opt", "b_hh") in opt and ("opt", "mask") in opt       # None is a null pointer there


def test_by_name_and_positional_calls_agree():
    need_kernels()
    k = kernels.get(torch.zeros(1, dtype=torch.float64))
    a1 = _lstm_fwd_args(torch.float64)
    a2 = {n: (v.clone() if isinstance(v, torch.Tensor) else v) for n, v in a1.items()}
    k.lstm_fwd(**a1)
    k.lstm_fwd(*(v.data_ptr() if isinstance(v, torch.Tensor) else v for v in a2.values()))
    for n in a1:
        if isinstance(a1[n], torch.Tensor):
            assert torch.equal(a1[n], a2[n]), n
    assert a1["h"].abs().sum() > 0


def test_two_copies_of_the_library_keep_a_manifest_each(tmp_path):
    """The manifest's registry is the library's own (hidden): a second build loaded in the same
    process (another checkout, another cache) neither adds to the first's nor lists nothing."""
    import ctypes
    import shutil as sh
    from rnnkit.kernels import call
    need_kernels()
    built = kernels.status().split("built: ")[1].split(" (")[0]
    copy = tmp_path / "copy.so"
    sh.copy(built, copy)
    first = call.read_manifest(ctypes.CDLL(built))
    second = call.read_manifest(ctypes.CDLL(str(copy)))
    assert first == second == kernels.get(torch.zeros(1)).manifest


def test_a_missing_cxx_is_said(tmp_path):
    from rnnkit import kernels
    env = {"CXX": str(tmp_path / "no-such-compiler")}
    with pytest.warns(RuntimeWarning, match="is not a program on PATH"):
        with pytest.MonkeyPatch.context() as mp:
            for k, v in env.items():
                mp.setenv(k, v)
            kernels._compiler()
