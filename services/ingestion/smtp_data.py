"""The content of an SMTP DATA command, assembled from what the client sends (pure: no I/O).

What a real MTA takes (Postfix ≥ 3.9 with `smtpd_forbid_bare_newline = normalize`):

- **Any line length.** A line is as long as it is, up to the size limit: long header
  lines, bounces with unbroken base64, a mail without any line break.
- **Bare LF ends a line** as CRLF does, for dot-unstuffing: a line that starts with "."
  loses that first dot, whatever ended the line before it (smtplib's `sendmail` with
  bytes stuffs after every LF, MTAs after every CRLF).
- **Only CRLF "." CRLF ends the data** (or "." CRLF as its very first line): the guard
  against SMTP smuggling. `\\n.\\n`, `\\r\\n.\\n` and `\\n.\\r\\n` inside the data are lines
  of the mail like any other (unstuffed: an empty line).

The bytes are kept as they came apart from the unstuffing: bare LFs stay bare LFs (the
raw store holds what was sent; the parser reads either line end). The CRLF before the
final "." belongs to the mail's last line, as RFC 5321 §4.1.1.4 says.

Memory is bounded by the size limit: past it the content is dropped and only the end of
the data is looked for (the answer is then 552).
"""

from __future__ import annotations

_END_LINE = b".\r\n"


class DataReader:
    """Feed it the pieces the client sends, in order: whole lines ending in LF, or parts of
    a longer line (`feed` returns True at the end of the data)."""

    def __init__(self, limit: int | None) -> None:
        self._limit = limit or None
        self._out = bytearray()
        self._size = 0
        self._too_large = False
        self._at_line_start = True
        self._after_crlf = True  # the previous line ended with CRLF (or there was none)
        self._held = b""  # the start of a line that may still become ".\r\n"
        self._last_cr = False  # the piece before ended with CR (a CRLF split in two)

    @property
    def too_large(self) -> bool:
        return self._too_large

    @property
    def size(self) -> int:
        """The bytes of content seen so far (also past the limit)."""
        return self._size

    def content(self) -> bytes:
        return bytes(self._out)

    def feed(self, piece: bytes) -> bool:
        if self._held:
            piece, self._held = self._held + piece, b""
        body = piece
        if self._at_line_start and piece[:1] == b".":
            if self._after_crlf:
                if piece == _END_LINE:
                    return True
                if len(piece) < len(_END_LINE) and _END_LINE.startswith(piece):
                    self._held = piece  # "." or ".\r": wait for the rest
                    return False
            body = piece[1:]  # dot-unstuffing
        self._size += len(body)
        if not self._too_large:
            if self._limit is not None and self._size > self._limit:
                self._too_large = True
                self._out = bytearray()  # dropped at once: only the end is looked for now
            else:
                self._out += body
        last = piece[-1:]
        if last == b"\n":
            self._at_line_start = True
            self._after_crlf = piece[-2:-1] == b"\r" if len(piece) > 1 else self._last_cr
        else:
            self._at_line_start = False
        self._last_cr = last == b"\r"
        return False
