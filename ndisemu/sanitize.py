"""Running code under AddressSanitizer and UndefinedBehaviorSanitizer.

A module built with ``-fsanitize=address`` can only be loaded into a process
whose first library is the ASan runtime, so Python itself must be started
with it preloaded.  ``ndisemu sanitized -- CMD ...`` does that: it finds the
runtime of the C compiler that builds ndisemu (``gcc -print-file-name``),
sets ``LD_PRELOAD`` and the options that make every report fail the run, and
runs CMD.  ``make test-sanitize`` runs the test suite this way against a
sanitized build of the native core (``python -m ndisemu._build --sanitize``).

Leak detection is off: CPython keeps memory alive at exit by design, and the
leaks that matter here (NBLs, MDLs, buffers) are the emulator's own to
report.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

# Every report ends the process with a failure; reports go to stderr with a
# stack trace (UBSan) and the runtime's exit code is not 0.
ASAN_OPTIONS = ("detect_leaks=0:halt_on_error=1:abort_on_error=0:exitcode=86:"
                "allocator_may_return_null=1:detect_stack_use_after_return=0:"
                "handle_segv=1:print_summary=1")
UBSAN_OPTIONS = "halt_on_error=1:print_stacktrace=1:exitcode=87"


class SanitizerMissing(RuntimeError):
    """The compiler's sanitizer runtime is not installed on this machine."""


def _compiler() -> list[str]:
    return shlex.split(os.environ.get("CC", "gcc"))


def runtime_library(name: str = "libasan.so") -> str:
    """The path of the compiler's sanitizer runtime library `name`."""
    try:
        out = subprocess.run([*_compiler(), f"-print-file-name={name}"], capture_output=True,
                             text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as error:
        raise SanitizerMissing(f"cannot ask the C compiler for {name}: {error}") from None
    # An unknown file comes back as the bare name: the runtime is not there.
    if not out or not Path(out).is_absolute() or not Path(out).exists():
        raise SanitizerMissing(f"the C compiler has no {name} (install its sanitizer runtime, "
                               "e.g. Debian's libasan8 / libubsan1, which come with gcc)")
    return str(Path(out).resolve())


def is_loaded() -> bool:
    """True if the ASan runtime is already in this process."""
    try:
        with open("/proc/self/maps") as maps:
            return any("libasan" in line for line in maps)
    except OSError:
        return False


def environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """`base` (default: this process's environment) with the ASan runtime
    preloaded and the sanitizer options that fail the run on any report."""
    env = dict(os.environ if base is None else base)
    preload = [runtime_library()]
    # ASan wraps __cxa_throw only if libstdc++ is there when it starts: a C++
    # extension (matplotlib's) throwing later would otherwise stop the run.
    try:
        preload.append(runtime_library("libstdc++.so"))
    except SanitizerMissing:
        pass
    if env.get("LD_PRELOAD"):
        preload.append(env["LD_PRELOAD"])
    env["LD_PRELOAD"] = " ".join(preload)
    env["ASAN_OPTIONS"] = ":".join(filter(None, [ASAN_OPTIONS, env.get("ASAN_OPTIONS")]))
    env["UBSAN_OPTIONS"] = ":".join(filter(None, [UBSAN_OPTIONS, env.get("UBSAN_OPTIONS")]))
    return env


def run(command: list[str]) -> int:
    """Runs `command` with the sanitizer runtime loaded; its exit status.

    Reports are written to files in a private folder and printed to this
    process's stderr when `command` ends, because a test runner that
    captures file descriptor 2 (pytest does by default) would otherwise
    lose them when the sanitizer ends the process.  A `log_path` of your
    own in ASAN_OPTIONS or UBSAN_OPTIONS wins over this one."""
    if not command:
        raise ValueError("no command to run")
    with tempfile.TemporaryDirectory(prefix="ndisemu-sanitized-") as reports:
        env = environment()
        # Run inside another `ndisemu sanitized`, this one's folder replaces
        # the outer one's, so that each prints the reports of its own command.
        outer = env.get("NDISEMU_SANITIZER_NOTES")
        outer_path = f"log_path={Path(outer).parent}/" if outer else None
        for name in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
            tool = name.split("_")[0].lower()
            kept = [option for option in env[name].split(":")
                    if not (outer_path and option.startswith(outer_path))]
            env[name] = ":".join([f"log_path={reports}/{tool}", *kept])
        env["NDISEMU_SANITIZER_NOTES"] = f"{reports}/ndisemu"   # what the core adds (asan.c)
        try:
            status = subprocess.run(command, env=env, check=False).returncode
        except FileNotFoundError:
            raise ValueError(f"no such command: {command[0]}") from None
        # asan.PID and ubsan.PID from the runtime, ndisemu.PID from the core
        # (what the report's address is in the emulated arena): in that order.
        for report in sorted(Path(reports).iterdir()):
            tool, _, pid = report.name.partition(".")
            title = "what ndisemu adds" if tool == "ndisemu" else f"{tool.upper()} report"
            sys.stderr.write(f"ndisemu sanitized: {title} of process {pid}:\n"
                             f"{report.read_text(errors='replace')}")
        sys.stderr.flush()
    return status
