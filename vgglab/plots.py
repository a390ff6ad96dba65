"""Plots with Korean labels: the font, learning curves, image grids and comparisons."""

from __future__ import annotations

import glob
import subprocess
import sys
import warnings

import matplotlib
import matplotlib.ticker
import numpy as np

KOREAN_FONTS = ("NanumGothic", "NanumBarunGothic", "Noto Sans CJK KR", "Noto Sans KR", "Malgun Gothic", "AppleGothic")
_FONT_DIRS = ("/usr/share/fonts/truetype/nanum/*.ttf", "/usr/share/fonts/opentype/noto/NotoSansCJK*.tt[cf]")


def _find_korean_font() -> str | None:
    from matplotlib import font_manager

    names = {f.name for f in font_manager.fontManager.ttflist}
    for name in KOREAN_FONTS:
        if name in names:
            return name
    added = False
    for pattern in _FONT_DIRS:  # installed after matplotlib built its font cache
        for path in glob.glob(pattern):
            font_manager.fontManager.addfont(path)
            added = True
    if added:
        names = {f.name for f in font_manager.fontManager.ttflist}
        return next((n for n in KOREAN_FONTS if n in names), None)
    return None


def use_korean_font() -> str | None:
    """Use a Korean font for every plot; return its name, or None (with one warning) if none is found.

    In Colab it installs Debian's ``fonts-nanum`` when no Korean font is present.
    """
    name = _find_korean_font()
    if name is None and "google.colab" in sys.modules:
        subprocess.run(["apt-get", "-qq", "install", "-y", "fonts-nanum"], check=False, capture_output=True)
        name = _find_korean_font()
    matplotlib.rcParams["axes.unicode_minus"] = False  # NanumGothic has no U+2212 minus sign
    if name is None:
        warnings.warn("한글 글꼴을 찾지 못했습니다. 그림의 한글이 네모로 보일 수 있습니다. "
                      "Debian/Ubuntu: sudo apt-get install fonts-nanum", stacklevel=2)
        return None
    matplotlib.rcParams["font.family"] = name
    return name


def plot_history(histories: dict, metric: str = "accuracy", ax=None, title: str | None = None):
    """Training (solid) and validation (dashed) curves for several runs: ``{label: history}``."""
    import matplotlib.pyplot as plt

    if not isinstance(histories, dict) or not histories:
        raise ValueError("histories must be a non-empty dict of {label: history}")
    ax = ax or plt.subplots(figsize=(6, 3.6))[1]
    names = {"accuracy": "정확도", "loss": "손실"}
    for i, (label, h) in enumerate(histories.items()):
        if metric not in h:
            raise ValueError(f"history {label!r} has no {metric!r}; it has {', '.join(h)}")
        epochs = np.arange(1, len(h[metric]) + 1)
        colour = f"C{i}"
        ax.plot(epochs, h[metric], color=colour, label=f"{label} (학습)")
        if h.get(f"val_{metric}"):
            ax.plot(epochs, h[f"val_{metric}"], color=colour, linestyle="--", label=f"{label} (검증)")
    ax.set_xlabel("에포크")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))  # no ticks at epoch 1.5
    ax.set_ylabel(names.get(metric, metric))
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def image_grid(x, y, class_names, per_class: int = 8, seed: int = 0):
    """A grid with one row per class: ``per_class`` random images, the class name at the left."""
    import matplotlib.pyplot as plt

    x, y = np.asarray(x), np.asarray(y)
    if x.ndim != 4 or len(x) != len(y):
        raise ValueError(f"need images (N, H, W, C) and N labels, got {x.shape} and {y.shape}")
    rng = np.random.default_rng(seed)
    k = len(class_names)
    fig, axes = plt.subplots(k, per_class, figsize=(per_class * 0.9, k * 0.95))
    for c in range(k):
        idx = np.flatnonzero(y == c)
        pick = rng.choice(idx, size=min(per_class, len(idx)), replace=False) if len(idx) else []
        for j in range(per_class):
            ax = axes[c, j]
            ax.set_xticks([])
            ax.set_yticks([])
            for s in ax.spines.values():
                s.set_visible(False)
            if j < len(pick):
                ax.imshow(x[pick[j]])
        axes[c, 0].set_ylabel(class_names[c], rotation=0, ha="right", va="center", fontsize=10)
    fig.tight_layout(pad=0.2)
    return fig


def bar_compare(labels, values, ylabel: str, ax=None, fmt: str = "{:,.0f}", log: bool = False):
    """A labelled bar chart of a few values."""
    import matplotlib.pyplot as plt

    if len(labels) != len(values) or not len(labels):
        raise ValueError(f"need as many labels as values, got {len(labels)} and {len(values)}")
    ax = ax or plt.subplots(figsize=(6, 3.2))[1]
    bars = ax.bar(range(len(values)), values, color=[f"C{i}" for i in range(len(values))])
    ax.set_xticks(range(len(values)), labels)
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
    for b, v in zip(bars, values):
        ax.annotate(fmt.format(v), (b.get_x() + b.get_width() / 2, b.get_height()), ha="center", va="bottom",
                    fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return ax


# ----------------------------------------------------------------------------------------------
# Optimiser paths over a 2-D surface


def plot_trajectories(surface, paths: dict, ax=None, levels: int = 18, title: str | None = None):
    """Paths of several optimisers (``{label: (steps + 1, 2) array}``) over the contours of a 2-D surface.

    ``surface`` is a ``vgglab.optim.Surface`` or its name. The start is a black dot, the minima are stars;
    contour levels are spaced by quantiles of the surface's values, so both the steep walls and the flat
    floor of a valley get lines.
    """
    import matplotlib.pyplot as plt

    from vgglab.optim import get_surface

    s = get_surface(surface)
    if not isinstance(paths, dict) or not paths:
        raise ValueError("paths must be a non-empty dict of {label: (steps + 1, 2) array}")
    ax = ax or plt.subplots(figsize=(5.5, 4))[1]
    x0, x1, y0, y1 = s.extent
    gx, gy = np.meshgrid(np.linspace(x0, x1, 300), np.linspace(y0, y1, 240))
    z = s.f(np.stack([gx, gy]))
    lv = np.unique(np.quantile(z, np.linspace(0.0, 1.0, levels + 2)[1:-1]))
    ax.contour(gx, gy, z, levels=lv, colors="0.6", linewidths=0.6, linestyles="solid")
    for i, (label, path) in enumerate(paths.items()):
        path = np.asarray(path)
        if path.ndim != 2 or path.shape[1] != 2:
            raise ValueError(f"path {label!r} must have shape (steps + 1, 2), not {path.shape}")
        ax.plot(path[:, 0], path[:, 1], "-", color=f"C{i}", lw=1.4, marker="o", ms=2, label=label)
    ax.plot(*s.start, "ko", ms=5)
    for m in s.minima:
        ax.plot(*m, marker="*", color="k", ms=11, ls="none")
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title(title or s.title)
    ax.legend(fontsize=8, loc="best")
    return ax
