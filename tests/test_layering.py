"""The package's layering (issue 30): the interface imports no model family; family classes stay reachable."""
import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import lightning_agx

FAMILIES = ("audiocraft", "diffusers", "transformers")


def _loaded_after(code: str) -> list[str]:
    """The family libraries in sys.modules after running `code` in a fresh interpreter."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps([m for m in {FAMILIES!r} if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("code", [
    "import lightning_agx.config",
    "from lightning_agx.models import TAGModel, load_model, available_models, check_prompts",
    "from lightning_agx.models.registry import check_model_name, sampling_keys_of\n"
    "check_model_name('debug'); sampling_keys_of('debug'); sampling_keys_of('debug-diffusion')",
    "import lightning_agx.amortized",
    "import lightning_agx.models.catalogue",
])
def test_the_interface_imports_no_family(code):
    assert _loaded_after(code) == []


def test_family_classes_are_reachable_lazily():
    import lightning_agx.models as models
    assert models.AudiocraftLM.__name__ == "AudiocraftLM"
    assert models.DiffusersTAG.__name__ == "DiffusersTAG"
    with pytest.raises(AttributeError):
        models.NoSuchFamily  # noqa: B018


# ---------------------------------------------------------------------------------------------------- toy names
PACKAGE = Path(lightning_agx.__file__).resolve().parent
# literals equal to a catalogued model's name that name something else (what, and why it is fine)
OTHER_MEANINGS = {
    ("classifiers/registry.py", "toysounds"): "the ToySounds classifier's name (a classifier, not a model)",
    ("classifiers/registry.py", "debug"): "the debug classifier's name",
    ("amortized/settings.py", "toysounds"): "data.source: the world's training grammar (a data source)",
    ("amortized/data.py", "toysounds"): "data.source (as above)",
}


def _docstrings(tree) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def _defaults(tree) -> set[int]:
    """Default values: of parameters, of dataclass fields (class-level annotated assignments) and ``default=``
    keyword arguments (argparse)."""
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            ids.update(id(d) for d in [*node.args.defaults, *node.args.kw_defaults] if d is not None)
        elif isinstance(node, ast.ClassDef):
            ids.update(id(s.value) for s in node.body if isinstance(s, ast.AnnAssign) and s.value is not None)
        elif isinstance(node, ast.keyword) and node.arg == "default":
            ids.add(id(node.value))
    return ids


def toy_names_outside_the_catalogue() -> list[str]:
    from lightning_agx.models.catalogue import names
    toy = set(names())
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel == "models/catalogue.py" or rel.startswith("toyworld/"):
            continue
        tree = ast.parse(path.read_text(), str(path))
        skip = _docstrings(tree) | _defaults(tree)
        for node in ast.walk(tree):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in toy
                    and id(node) not in skip and (rel, node.value) not in OTHER_MEANINGS):
                found.append(f"{rel}:{node.lineno}: {node.value!r}")
    return found


def test_no_toy_model_name_outside_the_catalogue():
    """The catalogue (`lightning_agx.models.catalogue`) is the one place the library names its embedded and debug
    models; the rest asks it (entry(name).classifier, .world, .shipped_explainer, .loader ...). Defaults (a
    parameter's, a dataclass field's) may name the default model; the toy world may name itself."""
    assert toy_names_outside_the_catalogue() == []


# ---------------------------------------------------------------------------------------------------- cycles
def _module_name(path: Path) -> str:
    parts = ["lightning_agx", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _top_level_imports(tree):
    """The import statements run when the module is imported: its body's, and those of top-level if/try/with
    blocks and class bodies (not function bodies, nor ``if TYPE_CHECKING:``)."""
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If):
            if not (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"):
                stack += node.body + node.orelse
        elif isinstance(node, (ast.Try, ast.With, ast.ClassDef)):
            stack += node.body + getattr(node, "orelse", []) + getattr(node, "finalbody", [])
            stack += [s for h in getattr(node, "handlers", []) for s in h.body]


def import_graph() -> dict[str, set[str]]:
    """Module -> the lightning_agx modules its import runs import (by name: the module a ``from X import y``
    imports is X.y where that is a module, else X)."""
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges = set()
        for node in _top_level_imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                base = package
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                source = (f"{base}.{node.module}" if node.module else base) if node.level else node.module
                targets = [f"{source}.{a.name}" if f"{source}.{a.name}" in files else source for a in node.names]
            edges.update(t for t in targets if t in files and t != name)
        graph[name] = edges
    return graph


def _cycle(graph) -> list[str] | None:
    state, path = {}, []

    def visit(node):
        state[node] = "open"
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        state[node] = "done"
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_no_module_level_import_cycle():
    graph = import_graph()
    assert "lightning_agx.models.registry" in graph and len(graph) > 80
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_models_never_import_the_toy_world_at_import_time():
    """The toy world builds on models/ (the audiocraft and diffusers wings); models/ reaches the toy world only
    through the catalogue's loader names (strings), imported when a catalogued model loads."""
    graph = import_graph()
    upward = {(m, t) for m, edges in graph.items() if m.startswith("lightning_agx.models")
              for t in edges if t.startswith("lightning_agx.toyworld")}
    assert upward == set()
    source = "\n".join(p.read_text() for p in (PACKAGE / "models").rglob("*.py"))
    assert "toyworld import" not in source and "import lightning_agx.toyworld" not in source


def test_the_cycle_check_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_every_module_imports():
    """Each module of the package imports in a fresh interpreter (all of them, in one): an import cycle that
    matters at run time fails here too."""
    modules = sorted(m for m in import_graph() if not m.endswith("__main__"))
    code = "import importlib\nfor m in %r:\n    importlib.import_module(m)\nprint('ok')" % modules
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-2000:]


def test_every_denoiser_declares_the_interface():
    from lightning_agx.models.diffusers.audioldm2 import AudioLDM2Denoiser
    from lightning_agx.models.diffusers.denoiser import Denoiser, StableAudioDenoiser
    from lightning_agx.toyworld.diffusion import PositionalDenoiser
    assert all(issubclass(d, Denoiser) for d in (StableAudioDenoiser, AudioLDM2Denoiser, PositionalDenoiser))
    assert Denoiser.__abstractmethods__ >= {"conditions", "unconditional", "forward", "cross_names", "latent_shape"}
