"""Click-to-select prompts: parsing the command line's values and checking them against the image."""

from __future__ import annotations

import pytest

from inpaint_studio.core.errors import BadInputError
from inpaint_studio.core.selection import PromptPoint, SelectionPrompt, parse_box, parse_point


def test_points_and_boxes_parse():
    assert parse_point("120,80") == (120.0, 80.0)
    assert parse_point(" 1.5 , 2 ") == (1.5, 2.0)
    assert parse_box("300,260,40,30") == (40.0, 30.0, 300.0, 260.0)  # any two opposite corners


@pytest.mark.parametrize("text", ["120", "1,2,3", "x,y", "nan,3", "inf,1", "", "1,,2"])
def test_a_malformed_point_is_one_sentence_naming_the_option(text):
    with pytest.raises(BadInputError) as info:
        parse_point(text, "--exclude")
    message = str(info.value)
    assert message.startswith("--exclude") and "X,Y" in message and message.endswith("--exclude 120,80.")


def test_a_malformed_box_is_one_sentence():
    with pytest.raises(BadInputError, match=r"X0,Y0,X1,Y1.*--box 40,30,300,260"):
        parse_box("1,2,3")


def test_a_point_outside_the_image_is_refused_with_the_valid_range():
    prompt = SelectionPrompt((PromptPoint(640, 10),))
    with pytest.raises(BadInputError) as info:
        prompt.check(640, 480)
    assert str(info.value) == "The point 640,10 is outside the 640×480 image; use x from 0 to 639 and y from 0 to 479."
    with pytest.raises(BadInputError, match="outside"):
        SelectionPrompt((PromptPoint(-0.5, 3),)).check(640, 480)
    assert SelectionPrompt((PromptPoint(639.9, 479.9),)).check(640, 480).points


def test_boxes_must_lie_on_the_image_and_have_area():
    with pytest.raises(BadInputError, match="reaches outside the 100×50 image"):
        SelectionPrompt(box=(0, 0, 101, 50)).check(100, 50)
    with pytest.raises(BadInputError, match="no area"):
        SelectionPrompt(box=(10, 10, 10.5, 40)).check(100, 50)
    assert SelectionPrompt(box=(0, 0, 100, 50)).check(100, 50).box == (0, 0, 100, 50)


def test_exclusions_alone_say_nothing_about_the_object():
    prompt = SelectionPrompt((PromptPoint(5, 5, include=False),))
    assert not prompt.has_object
    with pytest.raises(BadInputError, match="a point on it or a box around it"):
        prompt.check(10, 10)


def test_prompts_grow_immutably_and_record_as_plain_data():
    empty = SelectionPrompt()
    one = empty.with_point(PromptPoint(1, 2))
    two = one.with_point(PromptPoint(3, 4, include=False)).with_box((9, 8, 1, 2))
    assert empty.is_empty and not one.is_empty and one != two
    assert two.box == (1, 2, 9, 8)
    assert two.to_dict() == {"points": [[1, 2]], "exclude": [[3, 4]], "box": [1, 2, 9, 8]}
