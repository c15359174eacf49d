"""A model-upload pickle that carries source and plain values, not bytecode.

A pickle that holds code by value (cloudpickle's) holds code objects, and bytecode runs only
in the Python minor version that wrote it: written under 3.11, such a pickle segfaults in
Numerai's 3.12 and 3.13 images and fails to load in 3.10. This one holds instead:
- the source of the modules the live model runs (`MODULES`), joined into one module with their
  imports of each other removed, checked to import only numpy, pandas and the standard library
  and to parse as Python 3.10;
- the model as plain values (`LiveModel.to_state`: arrays as dtype, shape and bytes).

Unpickling calls the builtin `eval` on one expression (`LOADER`) that executes the source into
a fresh module and builds the model from its state, so the pickle loads in any Python from
3.10 on with numpy >= 1.26 and pandas >= 2.2: every image numerai-predict offers.
"""

import ast
import inspect
import pickle
import sys
import types

import dynjax.data.bins
import dynjax.data.errors
import dynjax.upload.live

MODULES = (dynjax.data.errors, dynjax.data.bins, dynjax.upload.live)  # in import order
ALLOWED_IMPORTS = frozenset({"dataclasses", "numpy", "pandas", "typing"})  # in every numerai-predict image
OLDEST_PYTHON = (3, 10)  # numerai-predict's oldest image
MODULE_NAME = "dynjax_live_model"  # the loaded module's name in Numerai's process
PROTOCOL = 4  # every Python since 3.4

LOADER = ("(lambda m: [__import__('sys').modules.setdefault(m.__name__, m), "
          "exec(compile(SOURCE, NAME + '.py', 'exec'), m.__dict__), "
          "getattr(m, CLASS).from_state(STATE)][-1])(__import__('types').ModuleType(NAME))")


class NotPortable(ValueError):
    """The live model's source would not run in some image Numerai offers."""


class _Portable:
    """Pickles as `eval(LOADER, {source, state})`: the loading Python compiles the source itself."""

    def __init__(self, source: str, class_name: str, state: dict):
        self.globals = {"SOURCE": source, "NAME": MODULE_NAME, "CLASS": class_name, "STATE": state}

    def __reduce__(self):
        return eval, (LOADER, self.globals)


def dumps(model) -> bytes:
    """The portable pickle of a `LiveModel` (NotPortable if its source would not run everywhere)."""
    return pickle.dumps(_Portable(bundle_source(MODULES), type(model).__name__, model.to_state()), protocol=PROTOCOL)


def bundle_source(modules: tuple[types.ModuleType, ...]) -> str:
    """The modules' source as one module: imports among them removed, every other import checked."""
    defined: set[str] = set()
    parts = []
    for module in modules:
        source = inspect.getsource(module)
        tree = ast.parse(source)
        drop = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                drop |= _check_import(node, module.__name__, defined, tree)
        names = _top_level_names(tree)
        clash = sorted(names & defined)
        if clash:
            raise NotPortable(f"{module.__name__} redefines {', '.join(clash)}, already defined by a module before it in the bundle")
        defined |= names
        lines = source.splitlines()
        parts.append(f"# ---- {module.__name__}\n" + "\n".join(line for i, line in enumerate(lines, 1) if i not in drop))
    source = "\n\n".join(parts) + "\n"
    check_python(source)
    return source


def check_python(source: str, oldest: tuple[int, int] = OLDEST_PYTHON) -> None:
    """NotPortable when the source uses grammar newer than Python `oldest`."""
    try:
        ast.parse(source, feature_version=oldest)
    except SyntaxError as err:
        raise NotPortable(f"the live model's source does not parse as Python {oldest[0]}.{oldest[1]} "
                          f"(numerai-predict's oldest image): line {err.lineno}: {err.msg}") from None


def _check_import(node: ast.Import | ast.ImportFrom, module: str, defined: set[str], tree: ast.Module) -> set[int]:
    """The line numbers to drop for one import: a top-level `from dynjax... import` of names the
    bundle already defines; any other import must be of `ALLOWED_IMPORTS` (NotPortable otherwise)."""
    roots = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
    if all(r.split(".")[0] in ALLOWED_IMPORTS for r in roots) and not getattr(node, "level", 0):
        return set()
    if isinstance(node, ast.ImportFrom) and roots[0].startswith("dynjax.") and node in tree.body:
        missing = [a.name for a in node.names if a.name not in defined or a.asname]
        if missing:
            raise NotPortable(f"{module} imports {', '.join(missing)} from {roots[0]}, which is not bundled before it")
        return set(range(node.lineno, node.end_lineno + 1))
    raise NotPortable(f"{module} imports {', '.join(roots)} (line {node.lineno}); the live model may import only "
                      f"{', '.join(sorted(ALLOWED_IMPORTS))} (Numerai's image) and the bundled modules")


def _top_level_names(tree: ast.Module) -> set[str]:
    """Names a module's own statements define (functions, classes, assignments), not its imports."""
    names = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    return names


def interpreter() -> str:
    """This Python's version, as the export records it."""
    return ".".join(map(str, sys.version_info[:3]))
