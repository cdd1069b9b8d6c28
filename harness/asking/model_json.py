"""JSON a model wrote, read without letting it stop anything.

A reply is the least trusted text a run handles: `{"a": [[[[…]]]]}` 200,000 levels deep makes
Python's parser raise RecursionError, an integer of 5,000 digits a ValueError that is no
JSONDecodeError (no .msg, no .pos), and a 400-digit number overflows every float conversion.
Every parser of model output (the RobustMAD judge's verdict, box and region replies) reads JSON
through here and gets the value or the reason it is unreadable, never an exception.
"""

from __future__ import annotations

import json
import math


def read_model_json(text: str) -> tuple[object, str | None]:
    """(value, None) or (None, why not): never raises on any text."""
    try:
        return json.loads(text), None
    except json.JSONDecodeError as error:
        return None, f"not JSON ({error.msg} at {error.pos})"
    except RecursionError:
        return None, "not JSON iadbench reads (nested too deeply)"
    except ValueError as error:  # Python's limit on digits in an integer, and the like
        return None, f"not JSON iadbench reads ({str(error).split(';')[0][:120]})"


def finite_number(value: object) -> float | None:
    """A JSON number as a finite float (None for bools, text, 10**400, NaN and infinities)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None
