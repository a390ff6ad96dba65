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



def test_import_leaves_logging_alone_and_setup_quiets_tensorflow():
    """``import vgglab`` only declares things; ``vgglab.setup()`` is what quiets TensorFlow's retracing notes."""
    import subprocess
    import sys

    code = ("import logging, vgglab; a = logging.getLogger('tensorflow').level; vgglab.setup('smoke', font=False, "
            "quiet=True); print(a, logging.getLogger('tensorflow').level)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         cwd=PACKAGE.parent, env={**__import__("os").environ, "VGGLAB_CIFAR10": "synthetic"})
    assert out.returncode == 0, out.stderr[-2000:]
    before, after = map(int, out.stdout.split()[-2:])
    assert before != 40 and after == 40  # logging.ERROR
