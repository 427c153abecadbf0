"""Fused per-step CPU kernels, compiled from C++ at first use; the Python cells are the fallback.

A recurrent step between two matmuls is a dozen element-wise tensor ops in Python (each a pass
over the step's rows and a dispatch); the kernels here do them in one pass per row. They hold no
new maths: each is the Python cell's step written out element by element (``lstm.cpp``,
``gru.cpp``, ``rnn.cpp`` beside this file), and the tests check the two against each other and
against the autograd oracle. Every ``*.cpp`` here is compiled into the library; each kernel
declares its arguments once, by name (``declare.h``), and the Python calls are made from the
manifest the library exports (:mod:`rnnkit.kernels.call`); the time loops share one scaffold
(``scaffold.h``) into which each cell puts its row functions.

The shared library is built with the system C++ compiler (``$CXX``, else ``c++``/``g++``) into
``$RNNKIT_KERNEL_CACHE`` (default ``~/.cache/rnnkit/kernels``), named by a hash of the sources,
compiler and flags, written atomically (readable by every user: a cache built for an image
serves them all), and loaded with ``ctypes``: no torch headers, a build of about ten seconds
(at most ``BUILD_SECONDS``). Where no compiler is found, a build of the same sources and flags
for this CPU already in the cache is loaded (by any compiler: an image's runtime stage without
one); without that, or where the build fails, rnnkit warns once and runs the Python cells (same
results, slower). ``RNNKIT_KERNELS=0`` turns the kernels off;
:func:`disabled` does it for a block of code (tests compare both paths).

    >>> from rnnkit import kernels
    >>> kernels.available(), kernels.status()          # doctest: +SKIP
    (True, 'built: ~/.cache/rnnkit/kernels/rnnkit-kernels-9c1e04b2-3f2a….so')
"""
import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
import time
import warnings
from pathlib import Path

import torch

from rnnkit import env_switch
from rnnkit.kernels import call
from rnnkit.kernels.switch import Switch
from rnnkit.outputs import umask as process_umask

HERE = Path(__file__).parent
SOURCES = tuple(sorted(p.name for p in HERE.glob("*.cpp")))   # compiled into one library
HEADERS = tuple(sorted(p.name for p in HERE.glob("*.h")))
FLAGS = ("-O3", "-march=native", "-fno-math-errno", "-fno-trapping-math", "-std=c++17",
         "-shared", "-fPIC", "-pthread")
GEMMS = {"f32": "sgemm_", "f64": "dgemm_"}
DTYPES = {torch.float32: "f32", torch.float64: "f64"}
# Whether the inference step shares a step's chunks with worker threads (step.cpp, pool.h) when
# torch.get_num_threads() > 1: measured (trials of both, the faster kept), always, or never.
SHARING = {"auto": 0, "always": 1, "never": 2}

_lock = threading.Lock()
_state = {"lib": None, "tried": False, "status": "not loaded yet"}
_switch = Switch()     # off inside disabled() blocks


class Kernels:
    """The kernels of one dtype as Python callables, one per line of the library's manifest
    (:mod:`rnnkit.kernels.call`), called by argument name::

        k.lstm_fwd(b=b, H=H, acts=acts, cp=c_prev, ld_cp=c_prev.stride(0), c=c, h=h, tc=tanh_c)

    ``gemm`` is the address of torch's own BLAS GEMM for this dtype (what the time loops call),
    or None where torch's CPU library exports none that passes :func:`_gemm_works`; the time
    loops are then not used and the Python loop calls the step kernels. ``manifest``: kernel
    name -> ((kind, argument), ...) as declared in the C++ sources."""

    def __init__(self, lib, sfx, dtype, gemm):
        self.manifest = call.read_manifest(lib)
        for name, args in self.manifest.items():
            setattr(self, name, call.bind(getattr(lib, f"rk_{name}_{sfx}"), name, args, dtype))
        self.gemm = gemm
        self.pool_worker_chunks = lib.rk_pool_worker_chunks    # () -> chunks workers computed
        self.pool_worker_chunks.restype = ctypes.c_int64
        self.pool_worker_chunks.argtypes = ()
        # lm_step(fixed, B, h0, c0, h1, c1, ids, logits, status, threads, key, version):
        # stack_step with the arguments that stay from token to token in `fixed`, an array laid
        # out as stack_step's declared arguments (8 bytes each; :meth:`lm_step_fixed` writes
        # one); key (-1: none) and version let step.cpp use layer 0's recurrent product that
        # the workers computed ahead for this model's next step
        self.lm_step = getattr(lib, f"rk_lm_step_{sfx}")
        self.lm_step.restype = None
        self.lm_step.argtypes = (ctypes.c_void_p, ctypes.c_int64) + (ctypes.c_void_p,) * 7 \
            + (ctypes.c_int64,) * 3
        self.lm_settle = lib.rk_lm_settle                      # () waits for products ahead
        self.lm_settle.restype, self.lm_settle.argtypes = None, ()
        self.lm_spec_hits = lib.rk_lm_spec_hits                # () -> steps that used it
        self.lm_spec_hits.restype = ctypes.c_int64
        self.lm_spec_hits.argtypes = ()
        self.pool_policy = lib.rk_pool_policy                  # (0 auto | 1 always | 2 never) -> old
        self.pool_policy.restype = ctypes.c_int64
        self.pool_policy.argtypes = (ctypes.c_int64,)

    def lm_step_fixed(self, **values):
        """stack_step's arguments by name (ints; None for a null pointer; ``w`` a ctypes array)
        as the 8-byte slots :attr:`lm_step` reads; the per-token ones may be left out."""
        names = [name for _, name in self.manifest["stack_step"]]
        slots = (ctypes.c_int64 * len(names))()
        for i, name in enumerate(names):
            v = values.get(name)
            slots[i] = ctypes.addressof(v) if isinstance(v, ctypes.Array) else (v or 0)
        return slots


def _torch_gemm(name):
    """The address of ``name`` (sgemm_/dgemm_) in torch's CPU library, or None."""
    libdir = Path(torch.__file__).parent / "lib"
    for lib in sorted(libdir.glob("libtorch_cpu.*")):
        try:
            return ctypes.cast(getattr(ctypes.CDLL(str(lib)), name), ctypes.c_void_p).value
        except (OSError, AttributeError):
            continue
    return None


def _gemm_works(k, dtype):
    """A small product through the kernels' GEMM call equals torch's (guards the calling
    convention: 32-bit integers, column-major)."""
    from torch._subclasses.fake_tensor import unset_fake_temporarily
    with unset_fake_temporarily():           # real tensors, whatever mode the first use is in
        return _gemm_product(k, dtype)


def _gemm_product(k, dtype):
    g = torch.Generator().manual_seed(0)
    cpu = dict(generator=g, dtype=dtype, device="cpu")       # under any default device
    a, b = torch.randn(3, 5, **cpu), torch.randn(5, 7, **cpu)
    c = torch.randn(3, 9, **cpu)                             # row stride 9: only 7 columns used
    want = c[:, :7] * 0.5 + a @ b
    k.gemm_rows(gemm=k.gemm, b=3, n=7, k=5, A=a, lda=5, B=b, ldb=7, beta=0.5, C=c, ldc=9)
    return torch.allclose(c[:, :7], want, rtol=1e-5, atol=1e-5)


def _cache_dir():
    root = os.environ.get("RNNKIT_KERNEL_CACHE")
    if root:
        try:
            return Path(root).expanduser()   # '~/kc' from a quoted value: not ./~/kc
        except RuntimeError:                 # ('~nosuchuser/kc' was made here, as written)
            raise RuntimeError(f"RNNKIT_KERNEL_CACHE={root}: {root.split(os.sep)[0]} is no "
                               f"user with a home folder") from None
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "rnnkit" / "kernels"


_warned = set()   # the CXX values warned about once


def _compiler():
    chosen = os.environ.get("CXX")
    if chosen and not shutil.which(chosen) and chosen not in _warned:
        _warned.add(chosen)
        warnings.warn(f"CXX={chosen} is not a program on PATH; looking for c++, g++ or clang++ "
                      f"instead", RuntimeWarning, stacklevel=2)
    for c in (chosen, "c++", "g++", "clang++"):
        if c and shutil.which(c):
            return c
    return None


def _cpu_tag():
    """What -march=native depends on: the CPU's model and flags (a cache shared between machines
    must not hand one CPU's build to another)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        keep = [l for l in lines if l.startswith(("model name", "flags"))][:2]
    except OSError:
        keep = []
    return platform.machine() + "|".join(keep)


def _build():
    here = HERE
    code = {name: (here / name).read_bytes() for name in SOURCES + HEADERS}
    h = hashlib.sha256()
    for name, text in code.items():
        h.update(name.encode() + b"\0" + text)
    h.update("\0".join([*FLAGS, _cpu_tag()]).encode())
    source = h.hexdigest()[:8]         # the sources, flags and CPU: any compiler's build of them
    cxx = _compiler()
    if cxx is None:
        return _prebuilt(source)
    h.update(b"\0" + _run([cxx, "--version"], cxx, 60).stdout.encode())
    out = _cache_dir() / f"rnnkit-kernels-{source}-{h.hexdigest()[:16]}.so"
    if out.exists() and not _intact(out):       # cut short or changed on disk: loading it
        for damaged in (out, _digest_file(out)):   # could crash the process (SIGBUS)
            damaged.unlink(missing_ok=True)
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=TEMPORARY, suffix=".so", dir=out.parent)
        os.close(fd)
        mark = None
        try:
            with tempfile.TemporaryDirectory() as src:      # compile exactly the bytes hashed
                for name, text in code.items():
                    Path(src, name).write_bytes(text)
                r = _run([cxx, *FLAGS, "-o", tmp, *(str(Path(src, s)) for s in SOURCES)], cxx,
                         BUILD_SECONDS)
            if r.returncode != 0:
                raise RuntimeError(f"{cxx} failed (exit {r.returncode}): {first_error(r.stderr)}")
            digest = hashlib.sha256(Path(tmp).read_bytes()).hexdigest()
            # the digest first, then the library: a process that finds the library finds its
            # digest (between the two it took a library without one for damaged, and deleted it)
            fd, mark = tempfile.mkstemp(prefix=TEMPORARY, suffix=".sha256", dir=out.parent)
            with os.fdopen(fd, "w") as f:
                f.write(digest + "\n")
            umask = process_umask()
            os.chmod(mark, 0o644 & ~umask)         # every user's (mkstemp made them 0600)
            os.chmod(tmp, 0o755 & ~umask)
            os.replace(mark, _digest_file(out))
            os.replace(tmp, out)                   # atomic: a reader never sees half a library
        finally:
            for left in (tmp, mark):
                if left is not None and os.path.exists(left):
                    os.unlink(left)
        _prune(out.parent, keep=out)
    return _opened(out, "built")


def _prebuilt(source):
    """Without a compiler: the newest intact library in the cache built from these sources for
    this CPU (by any compiler: a cache made where one was, then copied or shared)."""
    found = sorted((p for p in _cache_dir().glob(f"rnnkit-kernels-{source}-*.so") if _intact(p)),
                   key=lambda p: p.stat().st_mtime, reverse=True)
    if not found:
        raise RuntimeError(f"no C++ compiler found (set CXX, or install g++), and no build of "
                           f"these kernels for this CPU in {_cache_dir()}")
    return _opened(found[0], "prebuilt (no compiler here)")


def _opened(out, how):
    lib = ctypes.CDLL(str(out))
    kernels, loops = {}, True
    for dt, sfx in DTYPES.items():
        k = Kernels(lib, sfx, dt, _torch_gemm(GEMMS[sfx]))
        if k.gemm is None or not _gemm_works(k, dt):
            k.gemm, loops = None, False
        kernels[dt] = k
    note = "" if loops else " (no usable BLAS GEMM in torch's library: step kernels only)"
    return kernels, f"{how}: {out}{note}"


# the name of a build's temporary files (a build killed midway leaves them; _prune removes them)
TEMPORARY = ".rnnkit-kernels-build-"
BUILD_SECONDS = 600    # a compiler past this is stopped: the Python cells run


def _run(cmd, cxx, seconds):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=seconds)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{cxx} did not finish within {seconds} s") from None


def first_error(stderr):
    """The compiler's first error line (file:line: error: ...), or its last line: one line for
    the warning (its whole output was some twenty lines of templates)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    first = next((line for line in lines if " error: " in line or line.startswith("error")),
                 lines[-1] if lines else "no output")
    return first[:300] + ("..." if len(first) > 300 else "")


def _digest_file(lib):
    return lib.with_name(lib.name + ".sha256")


def _intact(lib):
    """Whether the cached library holds the bytes its build wrote (their SHA-256 is kept beside
    it): a library cut short by a full disk or a copy maps pages past its end and dies of
    SIGBUS when loaded, with no Python error to catch."""
    mark = _digest_file(lib)
    try:
        return mark.read_text().strip() == hashlib.sha256(lib.read_bytes()).hexdigest()
    except PermissionError:   # another user's build, of a private mode: not damaged, not ours
        raise RuntimeError(f"{lib}: not readable by this user (built by another); make the "
                           f"cache readable (chmod a+r) or set RNNKIT_KERNEL_CACHE to a folder "
                           f"of your own") from None
    except OSError:
        return False


def _prune(folder, keep, n_kept=4):
    """Remove all but the newest ``n_kept`` libraries built here (other sources, compilers or
    CPUs); ``keep``, just built, always stays. A process that has one loaded keeps its mapping."""
    for left in folder.glob(TEMPORARY + "*"):   # a killed build's, an hour old or more
        try:
            if time.time() - left.stat().st_mtime > 3600:
                left.unlink()
        except OSError:
            pass
    libs = sorted(folder.glob("rnnkit-kernels-*.so"), key=lambda p: p.stat().st_mtime,
                  reverse=True)
    for old in [p for p in libs if p != keep][n_kept - 1:]:
        for path in (old, _digest_file(old)):
            try:
                path.unlink()
            except OSError:
                pass


def _load():
    with _lock:
        if not _state["tried"]:
            _state["tried"] = True
            if not env_switch("RNNKIT_KERNELS"):
                _state["status"] = f"off (RNNKIT_KERNELS={os.environ['RNNKIT_KERNELS']})"
                return None
            try:
                _state["lib"], _state["status"] = _build()
                _sharing_from_env(_state["lib"])
            except KeyboardInterrupt:               # Ctrl-C mid-build: the next use tries again
                _state["tried"] = False             # (it left the kernels off, said nowhere)
                raise
            except Exception as e:                  # noqa: BLE001 - any failure: Python cells
                _state["status"] = f"unavailable: {type(e).__name__}: {e}"
                warnings.warn(f"rnnkit: fused CPU kernels {_state['status']}; using the "
                              "Python cells (same results, slower)", RuntimeWarning, stacklevel=3)
    return _state["lib"]


def _sharing_from_env(lib):
    """RNNKIT_STEP_SHARING as the step's sharing policy; a value not in SHARING is warned
    about and the default ("auto") kept: the kernels themselves are fine."""
    policy = os.environ.get("RNNKIT_STEP_SHARING", "auto")
    if policy not in SHARING:
        warnings.warn(f"rnnkit: RNNKIT_STEP_SHARING must be one of {', '.join(SHARING)}, got "
                      f"{policy!r}; using auto", RuntimeWarning, stacklevel=4)
        policy = "auto"
    next(iter(lib.values())).pool_policy(SHARING[policy])     # one library, one policy


def get(x):
    """The kernels for tensor ``x``'s dtype, or None (GPU tensor, other dtype, kernels off)."""
    if _switch.off or x.device.type != "cpu":
        return None
    lib = _state["lib"] if _state["tried"] else _load()
    return lib.get(x.dtype) if lib is not None else None


def loaded():
    """Some dtype's kernels where the library is loaded already, else None (builds nothing):
    for calls that are the same for every dtype (lm_settle, pool_policy)."""
    lib = _state["lib"]
    return next(iter(lib.values()), None) if lib else None


def available():
    """Whether the kernels are built and loaded (builds them on first call)."""
    return _load() is not None


def info():
    """Where the kernels come from and what runs: for ``rnnkit kernels`` and bug reports."""
    lib = _load()
    try:
        cache = str(_cache_dir())
    except RuntimeError as e:   # RNNKIT_KERNEL_CACHE of a user with no home folder: said
        cache = str(e)
    return {"status": _state["status"], "sources": str(Path(__file__).parent),
            "cache": cache, "compiler": _compiler(),
            "step_kernels": lib is not None,
            "time_loops": lib is not None and all(k.gemm is not None for k in lib.values())}


def status():
    """One line: where the library came from, or why the Python cells are used."""
    _load()
    return _state["status"]


def disabled():
    """Run the Python cells inside this block (the kernels stay loaded)."""
    return _switch.disabled()
