"""How a name or value from outside is shown back: one rule for every answer, report and
log line.

Outside text is a request's key or id, or a field of an upstream answer that could not be
read. It can be any size (a 64 kB body may be one key) and hold anything, a secret or a
control character too. So it is scrubbed (rotation/telemetry/redaction.py), and cut to
ECHO_CHARS characters with an ellipsis marking the cut: enough to recognise a GUID, a
resource name or a field, never enough to make an answer grow with its input.
"""

from __future__ import annotations

from rotation.telemetry.redaction import scrub

#: The most characters of an outside name or value any answer, report or line shows.
ECHO_CHARS = 60
ELLIPSIS = "…"


def echo(value: object, *, quoted: bool = True) -> str:
    """`value` as it may be shown back: its repr when `quoted` (quotes make the exact text,
    spaces and escapes included, readable inside a sentence), else its text; scrubbed
    first, then cut (cutting first could leave part of a secret the scrubber no longer
    recognises)."""
    text = repr(value) if quoted or not isinstance(value, str) else value
    text = scrub(text)
    if len(text) <= ECHO_CHARS:
        return text
    return text[: ECHO_CHARS - len(ELLIPSIS)] + ELLIPSIS
