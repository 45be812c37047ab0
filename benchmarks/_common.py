"""Shared helpers of the benchmark scripts: machine description, timing, peak memory, JSON output,
child processes, and the import guard that keeps optional packages out of the benchmark path.

Nothing here imports torch at module level, so a child process can record its start-up cost.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"

# Make ``import mome`` work from a plain checkout (the GPU machine has no editable install).
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

#: Packages the engine uses only off the benchmark path (DICOM, text encoders, Slicer, previews).
OPTIONAL_MODULES = ("highdicom", "pydicom", "open_clip", "transformers", "slicer", "PIL")
#: Third-party top-level modules the benchmarks need (torch, numpy, scipy, safetensors, einops,
#: pyyaml, tqdm, monai, SimpleITK, pynrrd, slicerio, packaging) and what they need.
ALLOWED_THIRD_PARTY = frozenset({
    "torch", "numpy", "scipy", "safetensors", "einops", "yaml", "_yaml", "tqdm", "monai", "SimpleITK", "nrrd",
    "slicerio", "packaging",  # the .seg.nrrd writer and the model hub's version checks
    # torch's own requirements and helpers
    "typing_extensions", "sympy", "mpmath", "networkx", "jinja2", "markupsafe", "filelock", "fsspec", "triton",
    "nvidia", "cuda", "functorch", "torchgen", "setuptools", "pkg_resources", "_distutils_hack",
    # this repository
    "mome", "_common",
})
_BLOCK_ENV = "MOME_BENCH_BLOCK_OPTIONAL"


def _installed_top_level_modules() -> set[str]:
    """Top-level modules and packages installed in site-packages (not the standard library)."""
    import pkgutil
    import site
    import sysconfig

    roots = {sysconfig.get_paths()[k] for k in ("purelib", "platlib")}
    roots.update(site.getsitepackages())
    if site.ENABLE_USER_SITE and site.getusersitepackages():
        roots.add(site.getusersitepackages())
    return {m.name for m in pkgutil.iter_modules([r for r in roots if Path(r).is_dir()])}


def block_optional_imports(enabled: bool) -> None:
    """With ``enabled`` (or the environment flag a parent set), this process behaves as on a machine
    that has only the allowed packages: the optional ones, and every other installed package outside
    ``ALLOWED_THIRD_PARTY``, fail to import (``sys.modules[name] = None``), so MONAI's optional
    imports and the engine's lazy imports take their "not installed" paths. The standard library
    and this repository import as usual. Child processes inherit the setting."""
    if enabled:
        os.environ[_BLOCK_ENV] = "1"
    if os.environ.get(_BLOCK_ENV) != "1":
        return
    stdlib = set(getattr(sys, "stdlib_module_names", ()))
    blocked = set(OPTIONAL_MODULES) | (_installed_top_level_modules() - ALLOWED_THIRD_PARTY - stdlib)
    for name in sorted(blocked):
        if name not in sys.modules:
            sys.modules[name] = None  # type: ignore[assignment]


def optional_imports_blocked() -> bool:
    return os.environ.get(_BLOCK_ENV) == "1"


def imported_third_party() -> list[str]:
    """Top-level non-standard-library modules imported so far (excluding blocked ``None`` entries)."""
    stdlib = set(getattr(sys, "stdlib_module_names", ()))
    names = {n.split(".")[0] for n, m in list(sys.modules.items()) if m is not None}
    # Extension modules register a few synthetic names (SWIG, Cython runtimes) without importing them.
    synthetic = ("swig_runtime_data", "cython_runtime")
    return sorted(n for n in names if n not in stdlib and not n.startswith(("_", *synthetic)) and n != "__main__")


def unexpected_third_party() -> list[str]:
    return [n for n in imported_third_party() if n not in ALLOWED_THIRD_PARTY]


def shared_data_dir() -> Path:
    """``$MOME_SHARED_DATA``, else ``../shared/data`` next to the repository (as the tests do)."""
    env = os.environ.get("MOME_SHARED_DATA")
    return Path(env).expanduser() if env else REPO.parent / "shared" / "data"


def peak_rss_bytes() -> int:
    """This process's peak resident set size so far.

    Linux: ``VmHWM`` from ``/proc/self/status``, the high-water mark of this process's own memory
    map. ``getrusage``'s ``ru_maxrss`` is not used there: Linux carries it over from the parent
    through fork and exec, so a child started by a big parent reports the parent's peak. Elsewhere
    ``ru_maxrss`` (KiB; bytes on macOS).
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(value if sys.platform == "darwin" else value * 1024)


PEAK_RSS_SOURCE = ("VmHWM of the measuring process (/proc/self/status); getrusage's ru_maxrss would report "
                   "the parent's peak, inherited through fork and exec on Linux")


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_total() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _git_revision() -> dict[str, Any] | None:
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    if head.returncode != 0:
        return None
    return {"commit": head.stdout.strip(), "dirty": bool(dirty.stdout.strip())}


def machine_info(device: str) -> dict[str, Any]:
    import numpy
    import torch

    info: dict[str, Any] = {
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch_threads": torch.get_num_threads(),
        "memory_total_bytes": _memory_total(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "device": device,
        "gpu": None,
    }
    for module in ("monai", "SimpleITK", "nrrd", "scipy"):
        try:
            info[module] = getattr(__import__(module), "__version__", None) or getattr(__import__(module), "Version", None)
            if callable(info[module]):
                info[module] = info[module]()
        except Exception:  # noqa: BLE001 - versions are informative only
            info[module] = None
    if info.get("SimpleITK") is not None:
        info["SimpleITK"] = str(info["SimpleITK"]).splitlines()[0]
    if device == "cuda" and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info["gpu"] = {
            "name": torch.cuda.get_device_name(0),
            "memory_bytes": int(props.total_memory),
            "multiprocessors": int(props.multi_processor_count),
            "capability": f"{props.major}.{props.minor}",
            "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(),
            "bf16": torch.cuda.is_bf16_supported(),
        }
    git = _git_revision()
    if git is not None:
        info["git"] = git
    return info


def resolve_device(name: str):
    import torch

    if name == "cuda" and not torch.cuda.is_available():
        sys.exit(f"--device cuda was requested but torch {torch.__version__} sees no CUDA GPU")
    return torch.device(name)


def synchronize(device) -> None:
    import torch

    if getattr(device, "type", device) == "cuda":
        torch.cuda.synchronize()


def timed(fn: Callable[[], Any], device) -> tuple[float, Any]:
    """Wall seconds of ``fn()``, with the GPU's queued work finished before and after."""
    synchronize(device)
    start = time.perf_counter()
    value = fn()
    synchronize(device)
    return time.perf_counter() - start, value


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def summary(values: Sequence[float], digits: int = 4) -> dict[str, Any]:
    return {
        "median": round(median(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
        "runs": [round(v, digits) for v in values],
    }


def ratio(a: float, b: float, digits: int = 3) -> float | None:
    return round(a / b, digits) if b > 0 else None


# ---------------------------------------------------------------------------- child processes
_RESULT_MARK = "@@MOME_BENCH_RESULT@@ "


def emit_child_result(result: dict[str, Any]) -> None:
    """A child's result for the parent: one marked JSON line on stdout."""
    sys.stdout.write("\n" + _RESULT_MARK + json.dumps(result) + "\n")
    sys.stdout.flush()


def run_child(script: Path, job: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
    """Run ``script --child JSON`` in a fresh interpreter; its result plus the process's wall time.

    A fresh process per measurement keeps peak memory (peak RSS, CUDA's peak) from one
    configuration out of the next.
    """
    command = [sys.executable, str(script), "--child", json.dumps(job)]
    start = time.perf_counter()
    # stdout carries the result; stderr (progress, errors) goes straight through.
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, timeout=timeout, cwd=REPO)
    wall = time.perf_counter() - start
    lines = [line for line in done.stdout.splitlines() if line.startswith(_RESULT_MARK)]
    if done.returncode != 0 or not lines:
        sys.stderr.write(done.stdout[-4000:])
        raise RuntimeError(f"benchmark child {job.get('name', job)} failed with exit code {done.returncode}")
    result = json.loads(lines[-1][len(_RESULT_MARK):])
    result["process_wall_s"] = round(wall, 3)
    return result


def result_header(name: str, machine: dict[str, Any]) -> dict[str, Any]:
    """The fields every result file starts with."""
    return {"benchmark": name, "created_utc": utc_now(), "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "machine": machine}


def check_target(measured: float | None, target: float, applies: bool, note: str = "") -> dict[str, Any]:
    """A target's entry: ``pass`` is null where the target does not apply to this run."""
    out: dict[str, Any] = {"target_max": target, "measured": measured}
    if not applies or measured is None:
        out["pass"] = None
        out["note"] = note or "not measured in this run"
    else:
        out["pass"] = bool(measured <= target)
        if note:
            out["note"] = note
    return out


def write_result(path: Path, result: dict[str, Any]) -> None:
    """Write a result file and say so, with a line per target."""
    write_json(path, result)
    log(f"wrote {path} ({result.get('total_s')} s)")
    for name, t in result.get("targets", {}).items():
        verdict = {True: "PASS", False: "FAIL", None: "n/a "}[t["pass"]]
        log(f"  {verdict} {name}: {t['measured']} (target ≤ {t['target_max']})")


def write_json(path: Path, data: dict[str, Any]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)
    return path


def default_out(name: str, device: str, quick: bool) -> Path:
    return RESULTS_DIR / f"{name}-{device}{'-quick' if quick else ''}.json"


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
