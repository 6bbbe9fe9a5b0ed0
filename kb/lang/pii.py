"""Personal data masked in indexed text: mobile and landline numbers, e-mail addresses, ID-card numbers.

Our own because the patterns are Chinese (11-digit mobiles, area-coded landlines, the GB 11643 ID number
with its check digit, which keeps 18-digit record ids that fail it unmasked).
"""

from __future__ import annotations

import re

PHONE, EMAIL, ID_CARD = "[电话]", "[邮箱]", "[身份证号]"
_EMAIL = re.compile(r"(?<![A-Za-z0-9.+_-])[A-Za-z0-9.+_-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_ID18 = re.compile(r"(?<![\dA-Za-z])[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx](?![\dA-Za-z])")
_MOBILE = re.compile(r"(?<![\d.])(?:\+?86[- ]?)?1[3-9]\d(?:[- ]?\d{4}){2}(?![\d.])")
_LANDLINE = re.compile(r"(?<![\d.])(?:[(（]0\d{2,3}[)）]\s?|0\d{2,3}-)\d{7,8}(?:-\d{1,4})?(?![\d.])")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def id_check_ok(number: str) -> bool:
    """GB 11643 check digit of an 18-character ID number."""
    total = sum(int(d) * w for d, w in zip(number[:17], _ID_WEIGHTS, strict=True))
    return "10X98765432"[total % 11] == number[17].upper()


def mask_pii(text: str) -> str:
    """Text with e-mail addresses, ID-card numbers (valid check digit) and phone numbers replaced by a label."""
    text = _EMAIL.sub(EMAIL, text)
    text = _ID18.sub(lambda m: ID_CARD if id_check_ok(m.group()) else m.group(), text)
    text = _MOBILE.sub(PHONE, text)
    return _LANDLINE.sub(PHONE, text)
