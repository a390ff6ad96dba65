"""The package's imports point one way: no cycle (imports inside functions count too), no private name of another
module, and the leaves (checks, files, tables) import nothing of vgglab."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "vgglab"
MODULES = {p.stem: p for p in PACKAGE.glob("*.py")}


def _imports(path):
    """(module imported, names taken from it) for every vgglab import anywhere in the file."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "vgglab":
            if node.module == "vgglab":  # from vgglab import data as D, or a name of the package top
                for a in node.names:
                    yield (a.name if a.name in MODULES else "__init__"), [a.name]
            else:
                yield node.module.split(".")[1], [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name == "vgglab" or a.name.startswith("vgglab."):
                    yield (a.name.split(".")[1] if "." in a.name else "__init__"), []


GRAPH = {m: {t for t, _ in _imports(p)} - {m} for m, p in MODULES.items()}


def test_no_import_cycle():
    def visit(node, path):
        for nxt in GRAPH.get(node, ()):
            assert nxt not in path, "import cycle: " + " -> ".join(path + [nxt])
            visit(nxt, path + [nxt])

    for module in GRAPH:
        visit(module, [module])


def test_no_private_name_crosses_a_module():
    crossing = [(m, t, n) for m, p in MODULES.items() for t, names in _imports(p) for n in names
                if n.startswith("_") and n != "__version__"]
    assert not crossing, crossing


def test_the_leaves_import_nothing_of_vgglab():
    assert GRAPH["checks"] == GRAPH["files"] == GRAPH["tables"] == set()

