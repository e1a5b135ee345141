"""The GPT-2 byte-to-character table used by byte-level BPE files of Hugging Face.

Each of the 256 bytes is shown as one printable character: printable Latin-1
bytes stand for themselves, the others (controls, space, soft hyphen, ...) are
moved to code points from U+0100 up, in byte order.  Hugging Face numbers its
byte alphabet by these characters, which is also the order in which this
package breaks ties between byte tokens while training.
"""

from __future__ import annotations


def _printable(byte: int) -> bool:
    return 0x21 <= byte <= 0x7E or 0xA1 <= byte <= 0xAC or 0xAE <= byte <= 0xFF


def _build_table() -> dict[int, str]:
    table = {}
    shifted = 0
    for byte in range(256):
        if _printable(byte):
            table[byte] = chr(byte)
        else:
            table[byte] = chr(256 + shifted)
            shifted += 1
    return table


BYTE_TO_CHAR: dict[int, str] = _build_table()
CHAR_TO_BYTE: dict[str, int] = {char: byte for byte, char in BYTE_TO_CHAR.items()}
# Bytes sorted by their character: Hugging Face's alphabet order.
BYTES_IN_HF_ORDER: list[int] = sorted(range(256), key=lambda b: ord(BYTE_TO_CHAR[b]))


def chars_to_bytes(text: str) -> bytes:
    """Turn a byte-level token string (e.g. ``"Ġthe"``) back into bytes; ValueError if not one."""
    try:
        return bytes(CHAR_TO_BYTE[char] for char in text)
    except KeyError as exc:
        raise ValueError(f"{text!r} is not a byte-level token: character {exc.args[0]!r} "
                         "is not in the GPT-2 byte table") from None
