"""The certificate's QR code: the cheaper mask choice gives exactly the code qrcode draws (same mask, same modules)."""

from __future__ import annotations

import random
import string

import qrcode
from qrcode import util

from esign.qr import _row_bits, penalty, qr_matrix


def test_penalty_is_qrcodes_lost_point():
    rng = random.Random(13)
    for n in (21, 25, 41, 45, 57):
        for density in (0.1, 0.5, 0.9):
            for _ in range(30):
                matrix = [[rng.random() < density for _ in range(n)] for _ in range(n)]
                assert penalty(_row_bits(matrix), n) == util.lost_point(matrix)


def test_qr_matrix_is_what_qrcode_makes():
    rng = random.Random(7)
    alphabet = string.ascii_letters + string.digits + "./?=-_"
    urls = ["https://jianshen.example.gov.cn/verify/1.2.156.3005.2.11440400MB2C12345X.001.ABCDEFGH1234?c=ABCD2345"]
    urls += ["https://x.example/verify/" + "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 400)))
             for _ in range(40)]
    for url in urls:
        for level in (qrcode.constants.ERROR_CORRECT_M, qrcode.constants.ERROR_CORRECT_L):
            reference = qrcode.QRCode(error_correction=level, border=0)
            reference.add_data(url)
            reference.make(fit=True)
            assert qr_matrix(url, error_correction=level) == reference.get_matrix(), url
