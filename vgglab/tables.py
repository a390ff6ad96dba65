"""Fixed-width text tables whose columns line up with Korean in them. A leaf module: it imports nothing of vgglab.

A Hangul syllable takes two columns of a fixed-width font, a Latin letter or digit one; Python's ``str.ljust`` counts
both as one, so tables padded with it go out of line wherever a cell holds Korean.
"""

from __future__ import annotations

import unicodedata


def display_width(text: str) -> int:
    """The columns ``text`` takes in a fixed-width font: two for each wide character (Hangul, CJK), one otherwise."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in str(text))


def pad(text: str, width: int, right: bool = False) -> str:
    """``text`` padded with spaces to ``width`` columns (on the left with ``right=True``), wide characters counted
    as two."""
    text = str(text)
    fill = " " * max(0, width - display_width(text))
    return fill + text if right else text + fill


def text_table(header, rows, right=None, gap: int = 2) -> str:
    """``header`` and ``rows`` (lists of cells) as lines of aligned columns, each as wide as its widest cell.

    Args:
        header: the column titles.
        rows: the rows, each with as many cells as ``header``; cells are turned into text with ``str``.
        right: the columns (by index) to align right, say numbers; default: every column but the first.
        gap: spaces between columns.

    Returns:
        The table as one string: the header, a rule, then one line per row.
    """
    header = [str(h) for h in header]
    rows = [[str(c) for c in r] for r in rows]
    bad = [r for r in rows if len(r) != len(header)]
    if bad:
        raise ValueError(f"every row needs {len(header)} cells like the header {header}, not {bad[0]}")
    right = set(range(1, len(header))) if right is None else set(right)
    widths = [max(display_width(c) for c in col) for col in zip(header, *rows)]

    def line(cells):
        return (" " * gap).join(pad(c, w, right=i in right) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return "\n".join([line(header), "-" * (sum(widths) + gap * (len(widths) - 1)), *map(line, rows)])
