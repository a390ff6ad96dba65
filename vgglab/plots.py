"""Plots with Korean labels: the font, learning curves, image grids and comparisons."""

from __future__ import annotations

import glob
import importlib.util
import os
import warnings

import matplotlib
import matplotlib.ticker
import numpy as np

KOREAN_FONTS = ("NanumGothic", "NanumBarunGothic", "Noto Sans CJK KR", "Noto Sans KR", "Malgun Gothic", "AppleGothic")
_FONT_DIRS = ("/usr/share/fonts/truetype/nanum/*.ttf", "/usr/share/fonts/opentype/noto/NotoSansCJK*.tt[cf]")


def _pip_font_files() -> list[str]:
    """NanumGothic as the ``koreanize-matplotlib`` wheel (a dependency of vgglab) ships it, found without importing
    that package (its module needs setuptools on Python 3.12 and later), so any OS gets the font from pip alone."""
    spec = importlib.util.find_spec("koreanize_matplotlib")
    if spec is None or not spec.submodule_search_locations:
        return []
    folder = os.path.join(list(spec.submodule_search_locations)[0], "fonts")
    return sorted(glob.glob(os.path.join(folder, "NanumGothic*.ttf")))


def _find_korean_font() -> str | None:
    from matplotlib import font_manager

    names = {f.name for f in font_manager.fontManager.ttflist}
    for name in KOREAN_FONTS:
        if name in names:
            return name
    added = False
    for path in _pip_font_files():
        font_manager.fontManager.addfont(path)
        added = True
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

    The font comes with ``pip install vgglab`` (NanumGothic from the ``koreanize-matplotlib`` wheel), on any OS and
    in Colab; a Korean font installed on the system is used first.
    """
    name = _find_korean_font()
    if name is None:
        matplotlib.rcParams["axes.unicode_minus"] = False
        warnings.warn("한글 글꼴을 찾지 못했습니다. 그림의 한글이 네모로 보일 수 있습니다. "
                      "pip install koreanize-matplotlib 로 나눔고딕을 설치하세요", stacklevel=2)
        return None
    # DejaVu Sans (matplotlib's own font) first, the Korean font as the fallback for the glyphs DejaVu lacks:
    # NanumGothic has no minus sign (U+2212), and mathtext, which writes log ticks such as 10^{-2}, draws
    # them with the first font of the list only, so a Korean font first would show those minus signs as boxes.
    # The price: Hangul inside a mathtext label ("표준편차 $\sigma$") has no fallback; keep Korean and $...$ apart.
    matplotlib.rcParams["font.family"] = ["DejaVu Sans", name]
    matplotlib.rcParams["axes.unicode_minus"] = True
    return name


def plot_history(histories: dict, metric: str = "accuracy", ax=None, title: str | None = None):
    """Training (solid) and validation (dashed) curves for several runs.

    Args:
        histories: ``{label: history}``, each history a record's ``"history"`` (lists per epoch).
        metric: ``"accuracy"`` or ``"loss"`` (or any key the histories share).
        ax: the matplotlib axes to draw on (default: a new figure).
        title: the plot's title.

    Returns:
        The axes, labelled in Korean (에포크, 정확도 / 손실).
    """
    import matplotlib.pyplot as plt

    if not isinstance(histories, dict) or not histories:
        raise ValueError("histories must be a non-empty dict of {label: history}")
    ax = ax or plt.subplots(figsize=(6, 3.6))[1]
    names = {"accuracy": "정확도", "loss": "손실"}
    for i, (label, h) in enumerate(histories.items()):
        if not isinstance(h, dict):
            raise TypeError(f"history {label!r} must be a dict such as record['history'], not {type(h).__name__}")
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

    from vgglab.checks import positive_int
    from vgglab.runtime import check_seed

    x, y = np.asarray(x), np.asarray(y)
    if x.ndim != 4 or len(x) != len(y):
        raise ValueError(f"need images (N, H, W, C) and N labels, got {x.shape} and {y.shape}")
    if isinstance(class_names, str) or not len(class_names):
        raise ValueError(f"class_names must be a non-empty list such as CLASS_NAMES_KO, not {class_names!r}")
    positive_int(per_class, "per_class")
    rng = np.random.default_rng(check_seed(seed))
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
    if not all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) and np.isfinite(v) for v in values):
        raise ValueError(f"values must be finite numbers, not {list(values)!r}")
    if log and min(values) <= 0:
        raise ValueError(f"values must be positive for a log scale, not {list(values)!r}; use log=False")
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
# Chapters 11-12: augmented images, weight histograms, the technique ladder


def augmentation_grid(columns: dict, titles_fontsize: int = 9):
    """Images side by side: ``{column title: images (N, H, W, 3)}``, one row per image.

    Images may be uint8 (0-255) or floats in [-1, 1] (the book's ``minus_one_one`` normalisation).
    """
    import matplotlib.pyplot as plt

    if not isinstance(columns, dict) or not columns:
        raise ValueError("columns must be a non-empty dict of {title: images}")
    arrays = [np.asarray(v) for v in columns.values()]
    if any(a.ndim != 4 for a in arrays) or len({a.shape for a in arrays}) != 1:
        raise ValueError(f"every column needs images of one shape (N, H, W, C), got {[a.shape for a in arrays]}")
    n, k = len(arrays[0]), len(arrays)
    fig, axes = plt.subplots(n, k, figsize=(k * 1.25, n * 1.25), squeeze=False)
    for j, (title, a) in enumerate(zip(columns, arrays)):
        shown = a if a.dtype == np.uint8 else np.clip((a + 1.0) / 2.0, 0.0, 1.0)
        for i in range(n):
            ax = axes[i, j]
            ax.imshow(shown[i])
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(title, fontsize=titles_fontsize)
    fig.tight_layout(pad=0.3)
    return fig


def weight_histograms(weights: dict, ax=None, bins: int = 81, limit: float | None = None, log: bool = True):
    """Histograms of weights for several models, ``{label: flat array}``, as outlines on one axis."""
    import matplotlib.pyplot as plt

    from vgglab.checks import positive_int

    if not isinstance(weights, dict) or not weights:
        raise ValueError("weights must be a non-empty dict of {label: array}")
    positive_int(bins, "bins")
    if limit is not None and not (isinstance(limit, (int, float)) and limit > 0 and np.isfinite(limit)):
        raise ValueError(f"limit must be a positive number or None, not {limit!r}")
    arrays = {k: np.ravel(np.asarray(v, np.float64)) for k, v in weights.items()}
    for label, a in arrays.items():
        if not a.size or not np.all(np.isfinite(a)):
            raise ValueError(f"weights {label!r} must be a non-empty array of finite numbers")
    ax = ax or plt.subplots(figsize=(6, 3.4))[1]
    limit = limit or float(max(np.quantile(np.abs(a), 0.999) for a in arrays.values()))
    edges = np.linspace(-limit, limit, bins + 1)
    for i, (label, a) in enumerate(arrays.items()):  # values beyond ±limit (the rarest 0.1%) are left out
        ax.hist(a, bins=edges, histtype="step", linewidth=1.4, color=f"C{i}", label=label)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("가중치 값")
    ax.set_ylabel("가중치 수" + (" (로그 눈금)" if log else ""))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def ladder_chart(rows, ax=None, chance: float = 0.1):
    """Mean test accuracy per ladder step with standard-deviation error bars, and the reported figures.

    ``rows`` are the dicts of ``vgglab.ladder.LadderResult.rows`` (``step``, ``label``, ``mean``, ``std``,
    ``reported``); a row without ``std`` gets no error bar, a row without ``reported`` no marker.
    """
    import matplotlib.pyplot as plt

    rows = list(rows)
    if not rows:
        raise ValueError("rows must hold at least one ladder step")
    for r in rows:
        missing = [k for k in ("step", "label", "mean") if not isinstance(r, dict) or k not in r]
        if missing:
            raise ValueError(f"ladder row {r!r} lacks {missing[0]!r}; rows are LadderResult.rows (step, label, mean, ...)")
    ax = ax or plt.subplots(figsize=(10, 3.8))[1]
    x = np.arange(len(rows))
    means = [100 * r["mean"] for r in rows]
    errs = [100 * r["std"] if r.get("std") is not None else 0.0 for r in rows]
    ax.bar(x, means, yerr=errs, capsize=3, color="C0", alpha=0.8, label="이 책 (평균 ± 표준편차)")
    for xi, m in zip(x, means):
        ax.annotate(f"{m:.0f}", (xi, m), xytext=(0, 2), textcoords="offset points", ha="center", va="bottom",
                    fontsize=8)
    rep = [(xi, 100 * r["reported"]) for xi, r in zip(x, rows) if r.get("reported") is not None]
    if rep:
        ax.scatter(*zip(*rep), marker="D", color="C3", zorder=3, label="워크숍 보고값")
    ax.axhline(100 * chance, color="gray", linestyle=":", label=f"무작위 추측 ({100 * chance:.0f}%)")
    ax.set_xticks(x, [f"{r['step']}\n{r['label']}" for r in rows], fontsize=8)
    ax.set_ylabel("테스트 정확도 (%)")
    ax.set_ylim(0, 100)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    return ax


# ----------------------------------------------------------------------------------------------
# Per-layer profiles (gradient norms, activation statistics) for several networks


def layer_curves(series: dict, names, ylabel: str, ax=None, log: bool = True, title: str | None = None,
                 styles: dict | None = None):
    """One line per network over its layers, input side on the left: ``series = {label: [value per layer]}``.

    ``names`` labels the x axis (layer names); every series needs one value per name. With ``log`` the y axis
    is logarithmic, which is what vanishing or exploding quantities need. ``styles`` maps a label to extra
    ``plot`` keywords (``{"ReLU (He)": {"linestyle": "--"}}``).
    """
    import matplotlib.pyplot as plt

    names = list(names)
    if not isinstance(series, dict) or not series:
        raise ValueError("series must be a non-empty dict of {label: [one value per layer]}")
    for label, values in series.items():
        if len(values) != len(names):
            raise ValueError(f"series {label!r} has {len(values)} values for {len(names)} layer names")
        if log and np.any(np.asarray(values, dtype=float) <= 0):
            raise ValueError(f"series {label!r} has values <= 0, which a log scale cannot show; use log=False")
    ax = ax or plt.subplots(figsize=(7, 3.8))[1]
    for i, (label, values) in enumerate(series.items()):
        kw = {"color": f"C{i}", "marker": "o", "markersize": 4, **(styles or {}).get(label, {})}
        ax.plot(range(len(names)), values, label=label, **kw)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
        plain_log_labels(ax)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3, which="major")
    ax.legend(fontsize=8)
    return ax


def plain_log_labels(ax, axis: str = "y"):
    """Label a log axis ``1e-8``, ``1e-4``, ``1`` in plain text.

    Matplotlib writes log ticks as mathtext ``10^{-8}``, whose minus sign (U+2212) Korean fonts such as
    NanumGothic lack, so it would show as a box.
    """
    import matplotlib.ticker as mticker

    if axis not in ("x", "y"):
        raise ValueError(f"axis must be 'x' or 'y', not {axis!r}")

    def label(v, _pos):
        if v <= 0:
            return ""
        e = np.log10(v)
        return ("1" if round(e) == 0 else f"1e{round(e)}") if abs(e - round(e)) < 1e-9 else f"{v:.0e}"

    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_formatter(mticker.FuncFormatter(label))
    target.set_minor_formatter(mticker.NullFormatter())
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


def confusion_matrix(cm, class_names, ax=None, title: str | None = None):
    """A confusion matrix as row percentages (each true class sums to 100%), with the counts' percentages written in."""
    import matplotlib.pyplot as plt

    cm = np.asarray(cm, dtype=np.float64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] != len(class_names):
        raise ValueError(f"cm must be a square matrix with one row per class ({len(class_names)}), got shape {cm.shape}")
    rows = 100 * cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    ax = ax or plt.subplots(figsize=(6, 5.4))[1]
    ax.imshow(rows, cmap="Blues", vmin=0, vmax=100)
    for i in range(len(rows)):
        for j in range(len(rows)):
            ax.text(j, i, f"{rows[i, j]:.0f}", ha="center", va="center", fontsize=7,
                    color="white" if rows[i, j] > 50 else "black")
    ticks = np.arange(len(class_names))
    ax.set_xticks(ticks, class_names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(ticks, class_names, fontsize=8)
    ax.set_xlabel("예측한 클래스")
    ax.set_ylabel("실제 클래스")
    if title:
        ax.set_title(title)
    return ax
