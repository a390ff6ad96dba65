import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from vgglab import plots  # noqa: E402
from vgglab.data import CLASS_NAMES_KO, synthetic_cifar10  # noqa: E402


def test_the_korean_font_comes_with_pip(monkeypatch):
    """NanumGothic arrives with the koreanize-matplotlib wheel, a dependency of vgglab: no system font is needed."""
    files = plots._pip_font_files()
    assert any(f.endswith("NanumGothic.ttf") for f in files), files
    from matplotlib import font_manager

    monkeypatch.setattr(plots, "_FONT_DIRS", ())  # as on a machine without system Korean fonts
    monkeypatch.setattr(font_manager.fontManager, "ttflist",
                        [f for f in font_manager.fontManager.ttflist if f.name not in plots.KOREAN_FONTS])
    assert plots._find_korean_font() == "NanumGothic"


def test_korean_labels_render_without_missing_glyphs():
    name = plots.use_korean_font()
    assert name is not None, "no Korean font: pip install -r requirements.txt installs koreanize-matplotlib"
    assert matplotlib.rcParams["font.family"][-1] == name
    history = {"loss": [2.0, 1.5], "accuracy": [0.2, 0.4], "val_loss": [1.9, 1.7], "val_accuracy": [0.25, 0.35]}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Glyph ... missing from font" becomes a failure
        ax = plots.plot_history({"기본 CNN": history}, metric="loss", title="손실 곡선")
        ax.set_ylim(-1, 3)  # negative tick labels: a minus sign (U+2212), which NanumGothic lacks
        ax.figure.canvas.draw()
        d = synthetic_cifar10(100, 10)
        fig = plots.image_grid(d.x_train, d.y_train, CLASS_NAMES_KO, per_class=3)
        fig.canvas.draw()
    assert ax.get_xlabel() == "에포크" and ax.get_ylabel() == "손실"
    plt.close("all")


def test_log_ticks_and_math_render_without_missing_glyphs(caplog):
    """Matplotlib's log ticks are mathtext (10^{-6}); mathtext reports a missing glyph in its log, not as a warning."""
    name = plots.use_korean_font()
    assert name is not None, "no Korean font: pip install -r requirements.txt installs koreanize-matplotlib"
    fig, ax = plt.subplots()
    ax.semilogy([1, 2, 3], [1.0, 1e-3, 1e-6], label="N(0, 0.01²)")
    ax.set_title(r"$\sigma_\ell / \sigma_1$")  # math alone: mathtext draws Hangul with the first font, DejaVu Sans
    ax.set_xlabel("합성곱층 (로그 눈금 −)")
    ax.legend()
    with warnings.catch_warnings(), caplog.at_level("WARNING", logger="matplotlib"):
        warnings.simplefilter("error")
        fig.canvas.draw()
    assert not [r for r in caplog.records if "glyph" in r.getMessage()], [r.getMessage() for r in caplog.records]
    labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert any("{-6}" in t for t in labels), labels  # the mathtext labels themselves
    plt.close("all")


def test_plot_errors_name_the_problem():
    with pytest.raises(ValueError, match="has no 'top5'"):
        plots.plot_history({"a": {"loss": [1.0]}}, metric="top5")
    with pytest.raises(ValueError, match="non-empty dict"):
        plots.plot_history({})
    with pytest.raises(ValueError, match="as many labels as values"):
        plots.bar_compare(["a"], [1, 2], "개수")
    with pytest.raises(ValueError, match="N labels"):
        plots.image_grid(np.zeros((3, 32, 32, 3)), [0, 1], CLASS_NAMES_KO)
    plt.close("all")


def test_history_ticks_are_whole_epochs():
    history = {"loss": [2.0, 1.7, 1.5, 1.4], "val_loss": [1.9, 1.8, 1.6, 1.6]}
    ax = plots.plot_history({"a": history}, metric="loss")
    ax.figure.canvas.draw()
    ticks = [t for t in ax.get_xticks() if 1 <= t <= 4]
    assert ticks and all(float(t).is_integer() for t in ticks), ticks
    plt.close("all")
