"""How Java prints numbers and holds text, so rendered values and messages read exactly as Kestra's do."""

from __future__ import annotations

import math
import re
from decimal import Decimal

_SURROGATE = re.compile("[\ud800-\udfff]")


def utf16_text(text: str) -> str:
    """Text as a Java string holds it: escaped surrogate pairs (`\\ud83d\\ude00`) join into one character, and a
    lone half, which UTF-8 cannot encode (so neither SQLite nor a terminal can take it), becomes U+FFFD."""
    if text.isascii() or _SURROGATE.search(text) is None:
        return text
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def java_double(value: float) -> str:
    """`Double.toString`: plain between 10^-3 and 10^7 (always with a decimal), else `1.5E-5`."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    number = Decimal(repr(value))
    if value == 0 or 1e-3 <= abs(value) < 1e7:
        plain = format(number, "f")
        return plain if "." in plain else plain + ".0"
    sign, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)  # finite here
    text = "".join(map(str, digits)).rstrip("0") or "0"
    return ("-" if sign else "") + f"{text[0]}.{text[1:] or '0'}E{exponent + len(digits) - 1}"
