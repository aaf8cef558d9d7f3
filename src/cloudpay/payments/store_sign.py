"""A store's printed sign (聚合码 / 一码付): one static QR that every wallet can scan.

The QR holds only the store's payment page URL (`<public base>/pay/<store_code>`); the page
itself works out which wallet opened it. The sign is an A6 card (105 × 148 mm), the size of
the table stands and counter cards shops already print their payment codes on.
"""

from __future__ import annotations

import segno

from cloudpay.payments import qr

# A printed QR is read from further away and gets scuffed: error correction Q keeps 25 % of
# the code readable where M keeps 15 %, at the cost of a slightly denser code.
SIGN_ERROR_CORRECTION = "q"
QUIET_ZONE_MODULES = 4  # the quiet zone ISO/IEC 18004 asks for


def store_pay_url(public_base_url: str, store_code: str) -> str:
    """What the store's QR encodes: the aggregated payment page of that store."""
    return f"{public_base_url.rstrip('/')}/pay/{store_code}"


def store_qr_image(pay_url: str, image_format: str) -> bytes:
    """The store's QR as PNG or SVG (the same encoder as per-order QRs)."""
    return qr.render(pay_url, image_format)


def store_qr_inline_svg(pay_url: str) -> str:
    """An `<svg>` element sized by its viewBox, so print CSS decides how large it prints."""
    code = segno.make(pay_url, error=SIGN_ERROR_CORRECTION, micro=False)
    svg: str = code.svg_inline(scale=1, border=QUIET_ZONE_MODULES, omitsize=True)
    return svg
