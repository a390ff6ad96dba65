"""Text tables that stay in line with Korean cells (a Hangul syllable takes two columns)."""

import pytest

from vgglab.tables import display_width, pad, text_table


def test_tables_line_up_with_korean_in_them():
    text = text_table(["실험", "정확도"], [["기본 CNN", "69.0%"], ["vgg16", "93.5%"]])
    widths = {display_width(line) for line in text.splitlines()}
    assert display_width("한글ab") == 6 and len(widths) == 1, text
    assert pad("가", 4) == "가  " and pad("가", 4, right=True) == "  가"


def test_a_row_of_the_wrong_length_is_named():
    with pytest.raises(ValueError, match=r"\['a'\]"):
        text_table(["x", "y"], [["a"]])
