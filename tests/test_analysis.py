import keras
import pytest

from vgglab import analysis as A
from vgglab.models import vgg


def _stack(kernels, c=8):
    inp = keras.Input((32, 32, c))
    x = inp
    for i, k in enumerate(kernels):
        x = keras.layers.Conv2D(c, k, padding="same", name=f"conv{i}")(x)
    return keras.Model(inp, x)


def test_three_3x3_vs_one_7x7_parameters_and_fields():
    c = 64
    three, one = _stack([3, 3, 3], c), _stack([7], c)
    assert A.param_breakdown(three)["conv"] - 3 * c == 27 * c * c
    assert A.param_breakdown(one)["conv"] - c == 49 * c * c
    assert A.receptive_fields(three)[-1]["receptive_field"] == 7 == A.receptive_fields(one)[-1]["receptive_field"]
    assert A.flops(three) == 3 * 2 * 32 * 32 * 9 * c * c


def test_gradient_receptive_field_matches_the_formula():
    for n in (1, 2, 3):
        m = _stack([3] * n, 4)
        assert A.gradient_receptive_field(m) == 2 * n + 1 == A.receptive_fields(m)[-1]["receptive_field"]


def test_vgg16_breakdown_and_flops():
    m = vgg("D")
    b = A.param_breakdown(m)
    assert b["total"] == 138_357_544 and b["conv"] == 14_714_688 and b["fc"] == 123_642_856
    assert A.flops(m) == 30_940_528_640  # 15.47 G multiply-adds
    rows = A.layer_table(m)
    fc1 = next(r for r in rows if r["name"] == "fc1")
    assert fc1["params"] == 7 * 7 * 512 * 4096 + 4096 and fc1["output_shape"] == (4096,)
    assert A.receptive_fields(m)[-1] == {"name": "block5_pool", "kernel": 2, "stride": 2, "receptive_field": 212,
                                         "jump": 32}


def test_analysis_rejects_non_models():
    with pytest.raises(TypeError, match="Keras model"):
        A.flops("vgg16")


def test_block_summary_groups_vgg16():
    m = vgg("D")
    blocks = A.block_summary(m)
    assert [b["name"] for b in blocks] == ["block1", "block2", "block3", "block4", "block5", "fc1", "fc2", "predictions"]
    assert sum(b["params"] for b in blocks) == m.count_params()
    assert sum(b["flops"] for b in blocks) == A.flops(m)
    assert blocks[4]["params"] == 3 * (9 * 512 * 512 + 512) and blocks[5]["params"] == 102_764_544
