"""The ``convscope`` entry point: before anything heavy is imported, re-run the process under tcmalloc or jemalloc
when one is installed and not already in use.

PyTorch on a CPU spends much of a training step in malloc/free of short-lived tensors; glibc's allocator returns
that memory to the system and asks for it again, tcmalloc keeps it. Measured here: an fp32 epoch 1.5x faster, a
VGG16 forward 158 -> 95 ms (docs/benchmarks.md). A library can only replace malloc when it is loaded before the
process starts, hence the re-exec (a few tens of milliseconds). ``CONVSCOPE_ALLOCATOR=system`` turns it off;
``CONVSCOPE_ALLOCATOR=/path/to/lib.so`` names the library to use.
"""

from __future__ import annotations

import os
import sys

ALLOCATOR_VARIABLE = "CONVSCOPE_ALLOCATOR"
# Debian/Ubuntu's libtcmalloc-minimal4 (what we measured), full tcmalloc, then jemalloc (libjemalloc2).
LIBRARY_NAMES = ("libtcmalloc_minimal.so.4", "libtcmalloc.so.4", "libjemalloc.so.2")
LIBRARY_FOLDERS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib",
                   "/usr/local/lib")
HOW_TO_INSTALL = "apt-get install libtcmalloc-minimal4 (Debian/Ubuntu), dnf install gperftools-libs (Fedora)"


def fast_allocator(environ: dict[str, str] = os.environ) -> str | None:
    """The allocator library to preload, or None: turned off, already loaded, or none installed."""
    chosen = environ.get(ALLOCATOR_VARIABLE, "")
    if chosen == "system" or not sys.platform.startswith("linux"):
        return None
    preloaded = environ.get("LD_PRELOAD", "")
    if any(marker in preloaded for marker in ("tcmalloc", "jemalloc")) or (chosen and chosen in preloaded):
        return None
    if chosen:
        return chosen if os.path.isfile(chosen) else None
    candidates = (os.path.join(folder, name) for name in LIBRARY_NAMES for folder in LIBRARY_FOLDERS)
    return next((path for path in candidates if os.path.isfile(path)), None)


def malloc_in_use() -> str | None:
    """The tcmalloc or jemalloc library this process runs with, or None (the system's malloc)."""
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            paths = {line.split()[-1] for line in maps if "libtcmalloc" in line or "libjemalloc" in line}
    except OSError:  # not Linux
        return None
    return min(paths) if paths else None


def main() -> None:
    library = fast_allocator()
    if library is not None:
        preload = " ".join(filter(None, (library, os.environ.get("LD_PRELOAD"))))
        env = {**os.environ, "LD_PRELOAD": preload}
        # -P: no current directory on sys.path (the console script has none): a csv.py there must not shadow csv
        os.execve(sys.executable, [sys.executable, "-P", "-m", "convscope.cli.main", *sys.argv[1:]], env)
    from .main import main as run
    sys.exit(run())


if __name__ == "__main__":
    main()
