"""Driver C code on emulated NBLs: build a driver's sources against ndisemu's
WDK-compatible headers, load them into a Kernel, and call their functions.

    drv = ndisemu.driver.build("parser", ["parser.c"], "ULONG parse(PNET_BUFFER nb);")
    d = k.load(drv)
    d.parse(nbl.FirstNetBuffer)

The sources include ``<ndis.h>`` (and ``<fwpsk.h>``) from
:func:`get_include`.  They are compiled as their own objects (C, or C++ for
``.cpp``/``.cc``/``.cxx``), with the flags given, into one cffi module
(cached by content) that shares ndisemu's own cffi types, so cdata from a
Kernel passes straight in.  The module reaches the emulated calls through
one table of function pointers the core hands it at load time
(ndisemu/include/ndisemu_api.h): several modules and several Kernels
coexist.

Each function `cdef` declares gets a trampoline: it makes the Kernel the
machine the driver's NDIS calls act on, records the IRQL and sets the unwind
point.  A bug check in any NDIS call the driver makes, or a failed
ASSERT/NT_ASSERT (0x1E, P1 STATUS_ASSERTION_FAILURE), stops the driver at
once (longjmp to the trampoline), restores the IRQL the call began at, and
raises :class:`ndisemu.BugCheck` from ``d.Function(...)``.  Nothing the
driver held is freed for it, as on a real machine.

``sanitize=True`` builds the driver's sources with AddressSanitizer and
UndefinedBehaviorSanitizer, and loading one poisons the Kernel's arena for
it: pool headers, freed blocks and the bytes past each buffer's requested
length, so an overrun past an MDL's bytes, into a header or into freed
memory is reported at the driver's source line.  The process must have the
sanitizer runtime loaded: run it under ``ndisemu sanitized -- CMD``.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.machinery
import importlib.util
import os
import re
import shlex
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cffi

from ndisemu import get_include  # noqa: F401 - also ndisemu.driver.get_include
from ndisemu import sanitize as _sanitize
from ndisemu.verifier import BugCheck

INCLUDE = Path(__file__).resolve().parent / "include"

# Flags every driver source is compiled with: position-independent, the
# MSVC extensions driver code relies on (tagged anonymous structs), pool
# tags written as multi-character constants ('tseT', as MSVC reads them),
# MSVC's own pragmas (#pragma warning, alloc_text, prefast) ignored without
# a word, and nothing exported (two driver modules never see each other's
# symbols).
BASE_FLAGS = ("-fPIC", "-O1", "-g", "-std=gnu11", "-fms-extensions", "-fvisibility=hidden",
              "-Wno-multichar", "-Wno-unknown-pragmas",
              "-fno-omit-frame-pointer")
SANITIZE_FLAGS = ("-fsanitize=address,undefined", "-fno-sanitize-recover=undefined")
# C++ sources: the same flags in C++17, without exceptions or RTTI (kernel
# C++ has neither).
CXX_SUFFIXES = (".cpp", ".cc", ".cxx")
CXX_FLAGS = ("-std=gnu++17", "-fno-exceptions", "-fno-rtti")


class BuildError(RuntimeError):
    """A driver source or the generated glue did not compile; the message
    carries the compiler's output."""




@dataclass
class _Function:
    name: str
    pointer_args: tuple[bool, ...]         # which parameters take a pointer
    declaration: str                       # the trampoline's C prototype
    shim: str = ""                         # extern "C" prototype of its C++ shim
    plain: str = ""                        # its own prototype, parameters a0, a1, ...


@dataclass
class Driver:
    """A built driver module, as :func:`build` returns it; load it into a
    Kernel with ``k.load(drv)``."""
    name: str
    path: Path
    module_name: str
    sanitize: bool
    functions: dict[str, _Function] = field(default_factory=dict)
    _module: Any = None

    def module(self) -> Any:
        """The compiled cffi module (imported on first use)."""
        if self._module is None:
            if self.sanitize and not _sanitize.is_loaded():
                raise RuntimeError(
                    f"driver {self.name!r} was built with sanitize=True, and this process does "
                    "not have the AddressSanitizer runtime loaded: run it under "
                    "`ndisemu sanitized -- CMD ...` (for example `ndisemu sanitized -- pytest`)")
            loader = importlib.machinery.ExtensionFileLoader(self.module_name, str(self.path))
            spec = importlib.util.spec_from_file_location(self.module_name, self.path,
                                                          loader=loader)
            module = importlib.util.module_from_spec(spec)
            loader.exec_module(module)
            sys.modules[self.module_name] = module
            self._module = module
        return self._module


class LoadedDriver:
    """A driver module bound to one Kernel: ``d.Function(...)`` calls the C
    function with the Kernel as the machine its NDIS calls act on.  Views
    are accepted for pointers and None for NULL; a bug check inside the
    driver raises :class:`ndisemu.BugCheck` here."""

    def __init__(self, kernel: Any, driver: Driver):
        from ndisemu._native import lib as core
        module = driver.module()
        if not module.lib._ndisemu_bind(core.ndisemu_driver_api()):
            raise RuntimeError(f"driver {driver.name!r} was built for another version of "
                               "ndisemu's call table: build it again")
        kernel._driver_binding_calls()
        if driver.sanitize:
            if not core.ndisemu_enable_asan(kernel._k):
                raise RuntimeError("the AddressSanitizer runtime is not in this process: run "
                                   "under `ndisemu sanitized -- CMD ...`")
            kernel.__dict__["_sanitized"] = True   # ndisemu.strategies notes its inputs
        self._kernel = kernel
        self._driver = driver
        self._lib = module.lib
        self._core = core
        self.ffi = module.ffi

    def __getattr__(self, name: str) -> Any:
        function = self._driver.functions.get(name)
        if function is None:
            return getattr(self._lib, name)     # a variable or constant of the cdef
        trampoline = getattr(self._lib, "_ndisemu_call_" + name)
        kernel, core, driver = self._kernel, self._core, self._driver
        from ndisemu._native import ffi
        from ndisemu.inspection import View

        def call(*args: Any) -> Any:
            converted = [a.ptr if isinstance(a, View)
                         else ffi.NULL if a is None and i < len(function.pointer_args)
                         and function.pointer_args[i] else a
                         for i, a in enumerate(args)]
            result = trampoline(kernel._k, *converted)
            if core.ndisemu_driver_unwound(kernel._k):
                # what a binding call raised in Python, else the core's bug check
                raised = kernel.__dict__.pop("_driver_exception", None)
                if isinstance(raised, BugCheck):    # named as the core's are: the path in
                    raised.args = (f"{driver.name}.{name} -> {raised.args[0]}",)
                if raised is not None:
                    raise raised
                raise kernel._raise_from_driver(f"{driver.name}.{name}")
            return result

        call.__name__ = name
        call.__doc__ = f"{function.declaration} (driver {driver.name!r})"
        self.__dict__[name] = call
        return call

    def __dir__(self) -> list[str]:
        return sorted(self._driver.functions)

    def __repr__(self) -> str:
        return f"<driver {self._driver.name!r} loaded into {self._kernel!r}>"


# ---- building ----------------------------------------------------------------

def _compiler() -> list[str]:
    return shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")


def _cache_root() -> Path:
    root = os.environ.get("NDISEMU_CACHE")
    if root:
        return Path(root)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ndisemu"


def _headers_digest() -> str:
    digest = hashlib.sha256()
    for path in sorted(INCLUDE.rglob("*.h")):
        digest.update(path.relative_to(INCLUDE).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


@functools.cache
def _types_cdef() -> str:
    """The typedefs of ndisemu_types.h, for cffi (the structs they build on
    come from ndisemu's own module)."""
    guards = ("NDISEMU_NDIS_H", "NDISEMU_ABI_H", "NDISEMU_WDM_H")
    out = subprocess.run([*_compiler(), "-E", "-P", "-DNDISEMU_CDEF",
                          *[f"-D{g}" for g in guards], f"-I{INCLUDE}",
                          str(INCLUDE / "ndisemu_types.h")],
                         capture_output=True, text=True, check=True).stdout
    return out


@functools.cache
def _base_ffi() -> cffi.FFI:
    """An FFI standing for ndisemu._native, for ffi.include: the struct types
    only (the driver module imports the real module at load)."""
    from ndisemu import _build
    base = cffi.FFI()
    base.cdef(_build.struct_cdef())
    base.set_source("ndisemu._native", "")
    return base


def _functions(ffi: cffi.FFI) -> dict[str, _Function]:
    """The functions the user's cdef declares, with their trampolines'
    prototypes (cffi's own model of the declarations gives the C types)."""
    functions = {}
    for key, (tp, _quals) in ffi._parser._declarations.items():   # noqa: SLF001
        if not key.startswith("function "):
            continue
        name = key.split(" ", 1)[1]
        if tp.ellipsis:
            raise ValueError(f"cdef: {name} takes '...': variadic driver functions cannot "
                             "be called through a trampoline")
        args = [arg.get_c_name(f" a{i}") for i, arg in enumerate(tp.args)]
        params = ", ".join(["void *ndisemu_kernel_", *args])
        declaration = tp.result.get_c_name(f" _ndisemu_call_{name}({params})")
        shim = tp.result.get_c_name(f" _ndisemu_cxx_{name}({', '.join(args) or 'void'})")
        plain = tp.result.get_c_name(f" {name}({', '.join(args) or 'void'})")
        pointers = tuple(type(arg).__name__ == "PointerType" for arg in tp.args)
        functions[name] = _Function(name, pointers, declaration, shim, plain)
    if not functions:
        raise ValueError("cdef declares no function to call")
    return functions


def _trampoline(function: _Function, returns_void: bool, nargs: int) -> str:
    args = ", ".join(f"a{i}" for i in range(nargs))
    call = f"{function.name}({args})"
    if returns_void:
        body = (f"        {call};\n"
                "        ndisemu_api->Leave(ndisemu_kernel_, &frame);\n"
                "        return;\n"
                "    }\n"
                "    ndisemu_api->Leave(ndisemu_kernel_, &frame);\n")
    else:
        body = (f"        __typeof__({call}) result = {call};\n"
                "        ndisemu_api->Leave(ndisemu_kernel_, &frame);\n"
                "        return result;\n"
                "    }\n"
                "    ndisemu_api->Leave(ndisemu_kernel_, &frame);\n"
                "    {\n"
                f"        __typeof__({call}) zero;\n"
                "        memset(&zero, 0, sizeof zero);\n"
                "        return zero;\n"
                "    }\n")
    return (f"{function.declaration}\n{{\n"
            "    NDISEMU_FRAME frame;\n"
            "    if (setjmp(frame.Unwind) == 0) {\n"
            "        ndisemu_api->Enter(ndisemu_kernel_, &frame);\n"
            f"{body}}}\n")


GLUE = """\
#define NDISEMU_RUNTIME_VIEW 1
#include <ndis.h>
#include <fwpsk.h>

/* the driver's own declarations (its cdef) */
%(cdef)s

/* the table the Kernel hands over at load */
static const NDISEMU_API *ndisemu_api;
int _ndisemu_bind(const void *api)
{
    const NDISEMU_API *table = api;
    if (table->Version != NDISEMU_API_VERSION || table->Size != sizeof(NDISEMU_API))
        return 0;
    ndisemu_api = table;
    return 1;
}

/* the emulated calls, with the WDK's names, through the table */
#define NDISEMU_THUNK(ret, name, params, args) ret name params { return ndisemu_api->name args; }
#define NDISEMU_VOID_THUNK(name, params, args) VOID name params { ndisemu_api->name args; }
NDISEMU_API_LIST(NDISEMU_THUNK, NDISEMU_VOID_THUNK)

/* the driver's C++-linkage functions, reached through their C++ shims */
%(forwards)s

/* the trampolines Python calls */
%(trampolines)s
"""


def _cxx_compiler() -> list[str]:
    """$CXX, else the C++ driver of the C compiler (gcc -> g++, clang ->
    clang++)."""
    if os.environ.get("CXX"):
        return shlex.split(os.environ["CXX"])
    *prefix, cc = _compiler()
    for c_name, cxx_name in (("clang", "clang++"), ("gcc", "g++"), ("cc", "c++")):
        if cc.endswith(c_name):
            return [*prefix, cc[:len(cc) - len(c_name)] + cxx_name]
    return [*prefix, "c++"]


def _is_cxx(path: Path) -> bool:
    return path.suffix in CXX_SUFFIXES


def _cxx_flags(flags: list[str]) -> list[str]:
    return [f for f in flags if f != "-std=gnu11"] + list(CXX_FLAGS)


def _c_linkage_symbols(objects: list[str]) -> set[str]:
    """The plain (unmangled) names the objects define: the functions with C
    linkage, found with nm (binutils, which gcc needs anyway)."""
    command = ["nm", "-P", "--defined-only", *objects]
    try:
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        raise BuildError(f"cannot list the driver's symbols with nm: {error}") from None
    return {line.split()[0] for line in out.splitlines() if line and not line.endswith(":")}


CXX_SHIM = """\
#include <ndis.h>
#include <fwpsk.h>

/* the driver's own declarations (its cdef), with C++ linkage here */
%(cdef)s

/* C entry points for the functions the driver defines with C++ linkage */
extern "C" {
%(shims)s
}
"""


def _call(ffi: cffi.FFI, name: str, callee: str) -> str:
    """A function body that passes its parameters a0, a1, ... to `callee`."""
    args = ", ".join(f"a{i}" for i in range(len(_args(ffi, name))))
    return f"{callee}({args});" if _returns_void(ffi, name) else f"return {callee}({args});"


def _cxx_shims(functions: dict[str, _Function], ffi: cffi.FFI, names: list[str],
               cdef: str) -> tuple[str, str]:
    """For `names`, which the driver's C++ sources define with C++ linkage
    (their names mangled): the C++ source of extern "C" shims calling them,
    and the C definitions, under their own names, that call the shims (what
    the glue's trampolines and cffi's own bindings link to)."""
    shims, forwards = [], []
    for name in names:
        function = functions[name]
        shims.append(f"{function.shim} {{ {_call(ffi, name, name)} }}")
        forwards.append(f"{function.shim};\n"
                        f"{function.plain} {{ {_call(ffi, name, '_ndisemu_cxx_' + name)} }}")
    return (CXX_SHIM % {"cdef": cdef, "shims": "\n".join(shims)}, "\n".join(forwards))


def _compile_object(source: Path, obj: Path, flags: list[str]) -> None:
    compiler = _cxx_compiler() if _is_cxx(source) else _compiler()
    if _is_cxx(source):
        flags = _cxx_flags(flags)
    command = [*compiler, *flags, "-c", str(source), "-o", str(obj)]
    out = subprocess.run(command, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise BuildError(f"compiling {source} failed:\n{' '.join(command)}\n"
                         f"{out.stdout}{out.stderr}")


def build(name: str, sources: Sequence[str | os.PathLike], cdef: str, *,
          include_dirs: Iterable[str | os.PathLike] = (),
          define_macros: Iterable[tuple[str, str | None]] = (),
          extra_compile_args: Iterable[str] = (), sanitize: bool = False) -> Driver:
    """Compiles `sources` (file paths) against ndisemu's headers into a driver
    module whose functions `cdef` declares (plain C prototypes; they may use
    every type the headers declare).  The result is cached by content: the
    same sources, cdef, flags and ndisemu headers give the same module
    without a rebuild.  `define_macros` are (name, value) pairs (value None:
    defined without a value); `extra_compile_args` apply to the driver's
    sources only (``-Wall -Werror`` is fine).  C++ sources (``.cpp``,
    ``.cc``, ``.cxx``) are built as C++17 without exceptions or RTTI; a cdef
    function they define with C++ linkage is reached through a generated
    ``extern "C"`` shim.  Raises :class:`BuildError`
    when compilation fails, TypeError/ValueError for bad arguments."""
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_]\w*", name):
        raise ValueError(f"name must be a C identifier, not {name!r}")
    if isinstance(sources, (str, os.PathLike)):
        raise TypeError("sources must be a list of file paths")
    paths = [Path(s).resolve() for s in sources]
    for path in paths:
        if not path.is_file():
            raise ValueError(f"no such source file: {path}")
    if not isinstance(cdef, str):
        raise TypeError("cdef must be a string of C declarations")
    includes = [str(Path(d).resolve()) for d in include_dirs]
    macros = []
    for item in define_macros:
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)):
            raise TypeError("define_macros must be (name, value) pairs")
        macros.append(f"-D{item[0]}" if item[1] is None else f"-D{item[0]}={item[1]}")
    extra = [str(a) for a in extra_compile_args]
    flags = [*BASE_FLAGS, f"-I{INCLUDE}", *(f"-I{d}" for d in includes), *macros,
             *(SANITIZE_FLAGS if sanitize else ()), *extra]

    cxx = any(_is_cxx(path) for path in paths)
    digest = hashlib.sha256()
    # The glue's text is in the key: a module built by an older ndisemu is
    # never taken for one this version would build.
    for part in (sys.version, " ".join(_compiler()), _headers_digest(), GLUE, CXX_SHIM, cdef,
                 *flags, str(bool(sanitize)), " ".join(_cxx_compiler()) if cxx else ""):
        digest.update(part.encode())
        digest.update(b"\0")
    for path in paths:
        digest.update(str(path).encode())
        digest.update(path.read_bytes())
    module_name = f"_ndisemu_driver_{name}_{digest.hexdigest()[:16]}"

    ffi = cffi.FFI()
    ffi.include(_base_ffi())
    ffi.cdef(_types_cdef())
    try:
        ffi.cdef(cdef)
    except cffi.CDefError as error:
        raise ValueError(f"cdef: {error}") from None
    functions = _functions(ffi)

    cache = _cache_root() / "drivers"
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    target = cache / (module_name + suffix)
    driver = Driver(name, target, module_name, bool(sanitize), functions)
    if target.exists():
        return driver

    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=f"build-{name}-") as tmp:
        work = Path(tmp)
        objects = []
        for i, path in enumerate(paths):
            obj = work / f"{i}_{path.stem}.o"
            _compile_object(path, obj, flags)
            objects.append(str(obj))
        forwards = ""
        if cxx:
            # A cdef function no object defines under its plain name has C++
            # linkage: C reaches it through an extern "C" shim.
            plain = _c_linkage_symbols(objects)
            mangled = [name for name in functions if name not in plain]
            if mangled:
                shim = work / "_ndisemu_cxx_shims.cpp"
                source, forwards = _cxx_shims(functions, ffi, mangled, cdef)
                shim.write_text(source)
                _compile_object(shim, work / "_ndisemu_cxx_shims.o", flags)
                objects.append(str(work / "_ndisemu_cxx_shims.o"))
        trampolines = "\n".join(
            _trampoline(f, _returns_void(ffi, f.name), len(_args(ffi, f.name)))
            for f in functions.values())
        ffi.cdef("int _ndisemu_bind(const void *api);\n" +
                 "".join(f.declaration + ";\n" for f in functions.values()))
        ffi.set_source(module_name, GLUE % {"cdef": cdef, "forwards": forwards,
                                            "trampolines": trampolines},
                       include_dirs=[str(INCLUDE), *includes],
                       extra_compile_args=["-std=gnu11", "-fvisibility=hidden",
                                           "-Wno-unused-function"],
                       extra_objects=objects,
                       extra_link_args=[*(SANITIZE_FLAGS[:1] if sanitize else ()),
                                        *(["-lstdc++"] if cxx else [])])
        try:
            built = ffi.compile(tmpdir=str(work))
        except (cffi.VerificationError, OSError) as error:
            raise BuildError(f"building driver {name!r} failed: {error}") from None
        os.replace(built, target)               # atomic: concurrent builds agree
    return driver


def _declaration(ffi: cffi.FFI, name: str) -> Any:
    return ffi._parser._declarations[f"function {name}"][0]   # noqa: SLF001


def _returns_void(ffi: cffi.FFI, name: str) -> bool:
    return _declaration(ffi, name).result.get_c_name() == "void"


def _args(ffi: cffi.FFI, name: str) -> tuple[Any, ...]:
    return tuple(_declaration(ffi, name).args)
