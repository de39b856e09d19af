"""The certificate's QR code: qrcode's matrix, with its mask choice made cheaper.

``qrcode`` chooses the mask (ISO/IEC 18004 §7.8.3: the one of eight with the lowest penalty) by building the whole
matrix eight times and scoring each with ``qrcode.util.lost_point``, in pure Python: ~80 % of a certificate's QR code
(~8 ms of CPU). Here the matrix is built once (mask 0) and each other candidate is that matrix with the data modules'
mask bits swapped (a bit pattern per version, computed once), scored by ``penalty`` on rows as integers and strings —
the same rules and the same figures as ``lost_point`` (a test compares both), so the same mask is chosen and the code
is the one qrcode would draw. The final matrix is qrcode's own (``makeImpl`` with the chosen mask).
"""

from __future__ import annotations

import functools
import re

import qrcode
from qrcode import util

_RUN = re.compile(r"0{5,}|1{5,}")  # rule 1: five or more modules of one colour in a row or column
_FINDER_LIKE = re.compile(r"(?=10111010000|00001011101)")  # rule 3: 1:1:3:1:1 with four light modules on one side


def penalty(rows: list[int], n: int) -> int:
    """``qrcode.util.lost_point`` of the ``n`` × ``n`` matrix whose rows are ``rows`` (bit n-1-c = module c, 1 = dark)."""
    lines = [format(row, f"0{n}b") for row in rows]
    columns = ["".join(column) for column in zip(*lines)]
    text = "2".join(lines + columns)  # every row and column, apart (no pattern crosses a "2")
    lost = sum(len(run) - 2 for run in _RUN.findall(text)) + 40 * len(_FINDER_LIKE.findall(text))
    pairs = (1 << (n - 1)) - 1  # bit k: modules k and k+1 (counted from the right) of a row
    for above, below in zip(rows, rows[1:]):
        same = ~(above ^ below)  # same colour vertically
        lost += 3 * bin(same & (same >> 1) & ~(above ^ (above >> 1)) & pairs).count("1")  # rule 2: 2×2 blocks
    dark = sum(line.count("1") for line in lines)
    percent = float(dark) / (n**2)
    return lost + int(abs(percent * 100 - 50) / 5) * 10  # rule 4, as qrcode computes it


def _row_bits(modules) -> list[int]:
    return [int("".join("1" if m else "0" for m in row), 2) for row in modules]


@functools.lru_cache(maxsize=8)
def _mask_bits(version: int) -> tuple[tuple[int, ...], ...]:
    """For each mask, per row: the data modules of ``version`` the mask inverts (as row bits)."""
    probe = _QRCode(version=version)
    probe._data_cells = []  # noqa: SLF001
    probe.makeImpl(True, 0)  # records the data cells (those map_data fills): they depend on the version only
    cells, n = probe._data_cells, probe.modules_count  # noqa: SLF001
    masks = []
    for pattern in range(8):
        inverts = util.mask_func(pattern)
        rows = [0] * n
        for r, c in cells:
            if inverts(r, c):
                rows[r] |= 1 << (n - 1 - c)
        masks.append(tuple(rows))
    return tuple(masks)


class _QRCode(qrcode.QRCode):
    _data_cells: list[tuple[int, int]] | None = None

    def map_data(self, data, mask_pattern):
        if self._data_cells == []:  # the probe of ``_mask_bits``: which cells are data
            self._data_cells = [(r, c) for r, row in enumerate(self.modules) for c, m in enumerate(row) if m is None]
        super().map_data(data, mask_pattern)

    def best_mask_pattern(self) -> int:
        """qrcode's choice (the lowest ``lost_point``, the first of equals), from one built matrix instead of eight."""
        self.makeImpl(True, 0)  # test mode: the format bits are light whatever the mask, only the data modules differ
        base = _row_bits(self.modules)
        masks = _mask_bits(self.version)
        n = self.modules_count
        scores = [penalty([b ^ m0 ^ mk for b, m0, mk in zip(base, masks[0], masks[k])], n) for k in range(8)]
        return scores.index(min(scores))


def qr_matrix(data: str, *, error_correction: int = qrcode.constants.ERROR_CORRECT_M) -> list[list[bool]]:
    """The QR code of ``data`` (no quiet zone), rows of modules (True = dark): what ``qrcode.QRCode.make`` gives."""
    qr = _QRCode(error_correction=error_correction, border=0)
    qr.add_data(data)
    qr.make(fit=True)
    return qr.get_matrix()
