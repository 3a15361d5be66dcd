"""The secret registry scrubs the same way with a few values (one regex) as with many
(the prefix scan a run over hundreds of apps switches to; see bench/)."""

from __future__ import annotations

import string

from hypothesis import given
from hypothesis import strategies as st

from rotation.telemetry import redaction

ALPHABET = "ab8Q~-_." + string.digits[:3]
secret_values = st.text(alphabet=ALPHABET, min_size=8, max_size=20)


def registries(values: list[str]) -> tuple[redaction.SecretRegistry, redaction.SecretRegistry]:
    few, many = redaction.SecretRegistry(), redaction.SecretRegistry()
    many._REGEX_LIMIT = 0  # force the scan path
    for value in values:
        few.add(value)
        many.add(value)
    return few, many


@given(
    values=st.lists(secret_values, min_size=1, max_size=8),
    pieces=st.lists(st.one_of(st.text(alphabet=ALPHABET, max_size=6), secret_values)),
)
def test_scan_and_regex_scrub_identically(values: list[str], pieces: list[str]) -> None:
    few, many = registries(values)
    text = "".join(pieces + values[:1] + pieces[:2])
    assert many.scrub(text) == few.scrub(text)


def test_many_secrets_are_each_scrubbed_longest_first() -> None:
    values = [f"secret-{i:04d}-value" for i in range(300)]
    registry = redaction.SecretRegistry()
    for value in values:
        registry.add(value)
    registry.add("secret-0007-value-and-more")  # contains an earlier one: scrubbed whole
    line = " ".join(values) + " secret-0007-value-and-more tail"
    scrubbed = registry.scrub(line)
    assert scrubbed == " ".join([redaction.REDACTED] * 301) + " tail"
