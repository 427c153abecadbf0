"""The fused CPU kernels' build and interface: switched off by the environment, a failed or
damaged build falls back, builds cached by content, the kernels command, and calls by name."""
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from rnnkit import kernels

from helpers import HAVE_CXX, need_kernels


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
    r = _python(CHECK, RNNKIT_KERNELS="false", RNNKIT_KERNEL_CACHE=str(tmp_path))
    assert r.stdout.startswith("False | off (RNNKIT_KERNELS=false) | []"), r.stdout + r.stderr
    r = _python("import warnings; warnings.simplefilter('error'); from rnnkit import kernels; "
                "kernels.get(__import__('torch').zeros(1))", RNNKIT_KERNELS="2",
                RNNKIT_KERNEL_CACHE=str(tmp_path))
    assert "RNNKIT_KERNELS must be 0 (off) or 1 (on), got '2'" in r.stderr


def test_a_failed_build_warns_once_and_falls_back(tmp_path):
    bad = tmp_path / "bad-cxx"
    bad.write_text("#!/bin/sh\necho 'no such compiler' >&2\nexit 3\n")
    bad.chmod(0o755)
    r = _python(CHECK, CXX=str(bad), RNNKIT_KERNEL_CACHE=str(tmp_path / "cache"))
    assert r.returncode == 0, r.stderr
    avail, status, warned = r.stdout.split(" | ")
    assert avail == "False" and "failed (exit 3)" in status and "no such compiler" in status
    assert warned.count("using the Python cells") == 1


# a compiler that says its version, then does what the test says
FAKE_CXX = '#!/bin/sh\n[ "$1" = --version ] && { echo fake 1; exit 0; }\n'


def test_a_failed_build_is_said_by_its_first_error_and_a_hung_compiler_is_stopped(tmp_path):
    """The warning held the last 2,000 characters of the compiler's output (some twenty lines
    of templates, starting mid-word); a compiler that hung, hung rnnkit."""
    bad = tmp_path / "bad-cxx"
    bad.write_text(FAKE_CXX + "printf 'In file included from x.h:1,\\nlstm.cpp:12:3: error: no "
                   "member named foo\\n  foo();\\n  ^\\ngru.cpp:9:1: error: other\\n' >&2\nexit 1\n")
    bad.chmod(0o755)
    r = _python(CHECK, CXX=str(bad), RNNKIT_KERNEL_CACHE=str(tmp_path / "cache"))
    status = r.stdout.split(" | ")[1]
    assert status.endswith("failed (exit 1): lstm.cpp:12:3: error: no member named foo"), status
    hung = tmp_path / "hung-cxx"
    hung.write_text(FAKE_CXX + "sleep 60\n")
    hung.chmod(0o755)
    r = _python("from rnnkit import kernels\nkernels.BUILD_SECONDS = 1\n" + textwrap.dedent(CHECK),
                CXX=str(hung), RNNKIT_KERNEL_CACHE=str(tmp_path / "cache2"))
    assert "did not finish within 1 s" in r.stdout.split(" | ")[1], r.stdout + r.stderr


def test_ctrl_c_during_the_build_tries_again_at_the_next_use(monkeypatch):
    """It left the kernels off for the rest of the process, said nowhere."""
    monkeypatch.setattr(kernels, "_state", {"lib": None, "tried": False, "status": "-"})
    calls = []

    def interrupted():
        calls.append(1)
        raise KeyboardInterrupt
    monkeypatch.setattr(kernels, "_build", interrupted)
    monkeypatch.delenv("RNNKIT_KERNELS", raising=False)
    for _ in range(2):
        with pytest.raises(KeyboardInterrupt):
            kernels.get(torch.zeros(1))
    assert len(calls) == 2 and not kernels._state["tried"]


def test_a_killed_builds_files_are_pruned_an_hour_on(tmp_path):
    left = tmp_path / (kernels.TEMPORARY + "abc.so")
    fresh = tmp_path / (kernels.TEMPORARY + "def.so")      # another process's build, now
    for f in (left, fresh):
        f.write_bytes(b"")
    os.utime(left, (1_000_000, 1_000_000))
    kernels._prune(tmp_path, keep=None)
    assert not left.exists() and fresh.exists()


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
    for p in files:      # every user may read them (a cache built for an image; mkstemp: 0600)
        assert p.stat().st_mode & 0o044 == 0o044, oct(p.stat().st_mode)
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
    bare = tmp_path / "bin"                       # no compiler on PATH: the cache still serves
    bare.mkdir()
    r4 = _python(CHECK, RNNKIT_KERNEL_CACHE=str(cache), PATH=str(bare), CXX="")
    assert r4.stdout.startswith(f"True | prebuilt (no compiler here): {lib} |"), \
        r4.stdout + r4.stderr
    r5 = _python(CHECK, RNNKIT_KERNEL_CACHE=str(tmp_path / "empty"), PATH=str(bare), CXX="")
    assert r5.stdout.startswith("False | unavailable: RuntimeError: no C++ compiler found (set "
                                "CXX, or install g++), and no build of these kernels for this "
                                "CPU in "), r5.stdout + r5.stderr


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
