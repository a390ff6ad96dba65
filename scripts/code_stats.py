"""Size figures of the package: lines per module, the longest functions, ``raise`` statements and hand-written
bool-excluding int checks. ``python scripts/code_stats.py [folder]`` (default: vgglab/)."""

import ast
import sys
from pathlib import Path


def main(folder: str = "vgglab") -> None:
    rows, functions, raises, int_checks = [], [], 0, 0
    for path in sorted(Path(folder).glob("*.py")):
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text)
        rows.append((path.name, len(text.splitlines())))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                functions.append((node.end_lineno - node.lineno + 1, f"{path.stem}.{node.name}"))
            raises += isinstance(node, ast.Raise)
        int_checks += text.count("isinstance(") and sum(
            1 for line in text.splitlines() if "isinstance(" in line and ", bool)" in line and "int" in line)
    for name, n in sorted(rows, key=lambda r: -r[1]):
        print(f"{n:6d}  {name}")
    print(f"{sum(n for _, n in rows):6d}  total in {len(rows)} modules")
    print("longest functions:", ", ".join(f"{name} ({n})" for n, name in sorted(functions, reverse=True)[:3]))
    print(f"raise statements: {raises}; isinstance(v, bool)-and-int checks: {int_checks}")


if __name__ == "__main__":
    main(*sys.argv[1:])
