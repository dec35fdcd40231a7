"""What a click-to-select request says: points on (or off) the object and an optional box around it.

Pure data, shared by the studio's Select tool and `inpaint-studio select`: the prompt is built here, checked
against the image here (a point outside the image is one sentence), and handed to the segmentation engine
(engine/segmentation.py), which turns it into the model's coordinates. Coordinates are document pixels,
continuous: pixel (i, j) spans [i, i+1) x [j, j+1), so a click in the middle of pixel (10, 4) is (10.5, 4.5).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from inpaint_studio.core.errors import BadInputError

Box = tuple[float, float, float, float]  # left, top, right, bottom


@dataclass(frozen=True)
class PromptPoint:
    """A click: on the object (`include`) or on a part to leave out."""

    x: float
    y: float
    include: bool = True


@dataclass(frozen=True)
class SelectionPrompt:
    """Points and an optional box; equal prompts give equal masks (the engine is deterministic)."""

    points: tuple[PromptPoint, ...] = ()
    box: Box | None = None

    @property
    def is_empty(self) -> bool:
        return not self.points and self.box is None

    @property
    def has_object(self) -> bool:
        """True when something says where the object is (a point on it or a box); exclusions alone do not."""
        return self.box is not None or any(point.include for point in self.points)

    def with_point(self, point: PromptPoint) -> SelectionPrompt:
        return replace(self, points=(*self.points, point))

    def with_box(self, box: Box) -> SelectionPrompt:
        left, top, right, bottom = box
        return replace(self, box=(min(left, right), min(top, bottom), max(left, right), max(top, bottom)))

    def check(self, width: int, height: int) -> SelectionPrompt:
        """This prompt when every point and the box lie on a width x height image; else one sentence."""
        for point in self.points:
            check_point(point, width, height)
        if self.box is not None:
            left, top, right, bottom = self.box
            if not _finite(*self.box) or left < 0 or top < 0 or right > width or bottom > height:
                raise BadInputError(
                    f"The box {','.join(_fmt(v) for v in self.box)} reaches outside the {width}×{height} image; "
                    f"keep it within 0,0,{width},{height}."
                )
            if right - left < 1 or bottom - top < 1:
                raise BadInputError(
                    f"The box {','.join(_fmt(v) for v in self.box)} has no area; give two opposite corners."
                )
        if not self.has_object:
            raise BadInputError(
                "Say where the object is: a point on it or a box around it; points to leave out only take "
                "parts away from an object."
            )
        return self

    def to_dict(self) -> dict[str, object]:
        """Plain data (what a history entry records about the selection)."""
        return {
            "points": [[p.x, p.y] for p in self.points if p.include],
            "exclude": [[p.x, p.y] for p in self.points if not p.include],
            "box": list(self.box) if self.box is not None else None,
        }


def check_point(point: PromptPoint, width: int, height: int) -> PromptPoint:
    """The point when it lies on a width x height image; else one sentence with the valid range."""
    if not (_finite(point.x, point.y) and 0 <= point.x < width and 0 <= point.y < height):
        raise BadInputError(
            f"The point {_fmt(point.x)},{_fmt(point.y)} is outside the {width}×{height} image; "
            f"use x from 0 to {width - 1} and y from 0 to {height - 1}."
        )
    return point


def parse_point(text: str, option: str = "--point") -> tuple[float, float]:
    """ "X,Y" -> (x, y); a malformed value is one sentence naming the option."""
    values = _numbers(text, 2, option, "X,Y", "120,80")
    return values[0], values[1]


def parse_box(text: str, option: str = "--box") -> Box:
    """ "X0,Y0,X1,Y1" (two opposite corners) -> (left, top, right, bottom)."""
    x0, y0, x1, y1 = _numbers(text, 4, option, "X0,Y0,X1,Y1", "40,30,300,260")
    return (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


def _numbers(text: str, count: int, option: str, form: str, example: str) -> list[float]:
    parts = [part.strip() for part in str(text).split(",")]
    try:
        values = [float(part) for part in parts]
    except ValueError:
        values = []
    if len(values) != count or len(parts) != count or not _finite(*values):
        raise BadInputError(f"{option} '{text}' is not {form} in pixels; write it like {option} {example}.")
    return values


def _finite(*values: float) -> bool:
    return all(math.isfinite(v) for v in values)


def _fmt(value: float) -> str:
    return f"{value:g}"
