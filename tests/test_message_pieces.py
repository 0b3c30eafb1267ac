"""A body given in parts (its frame and the fragments many digests share) must carry exactly
the bytes of the whole body: the sender reuses each shared part's base64 lines, and where two
parts meet it may end a line early (RFC 2045 sets a maximum line length, not a fixed one)."""

from __future__ import annotations

import binascii
import email
from email import policy

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from publisher.delivery.smtp import is_wire_ready
from publisher.email.fragments import expand, pieces
from publisher.email.message import MessageTemplate, SharedPieces, body_end, body_length
from publisher.email.placeholders import Placeholders
from publisher.email.render import Fragment

MARKS = Placeholders.of("0123456789abcdef0123")
# text with what makes encoding hard: multi-byte characters, line breaks of every kind, dots
_TEXT = st.text(alphabet=st.sampled_from(list("ab .\n\r\té€😀<>&")), max_size=140)
_OWN = st.one_of(_TEXT, st.sampled_from([MARKS.email, MARKS.unsubscribe_url, "x" * 56, "y" * 57]))


def _template(html: object, text: object, shared: SharedPieces | None) -> MessageTemplate:
    return MessageTemplate(
        subject="Week 49", html=html, text=text, from_addr="News <news@example.org>",  # type: ignore[arg-type]
        list_id='"News" <news.example.org>', marks=MARKS, shared=shared,
    )  # fmt: skip


def _message(template: MessageTemplate) -> bytes:
    return template.for_recipient(
        to="reader@example.org", unsubscribe_url="https://news.example.org/u/abc",
        preferences_url="https://news.example.org/p/abc", message_id="<d-1.s-1@example.org>",
        date="Mon, 07 Dec 2026 08:00:00 +0000",
    )  # fmt: skip


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    parts=st.lists(
        st.one_of(
            st.tuples(_OWN, st.none()),
            st.tuples(_TEXT, st.sampled_from(["a", "b", "c"])),
        ),
        max_size=12,
    ),
    reuse=st.booleans(),
)
def test_a_body_in_parts_encodes_to_the_whole_bodys_bytes(
    parts: list[tuple[str, str | None]], reuse: bool
) -> None:
    # a shared key always names the same text, as a fragment's hash does
    texts = {"a": "", "b": "", "c": ""}
    for text, key in parts:
        if key is not None and not texts[key]:
            texts[key] = text
    parts = [(texts[key] if key else text, key) for text, key in parts]
    whole = "".join(text for text, _ in parts)
    shared = SharedPieces(limit=200 if reuse else 1 << 20)
    if reuse:  # the cache already holds these runs, encoded for other alignments
        _template(parts, parts[::-1], shared)
    expected = _message(_template(whole, whole, None))
    got = _message(_template(parts, parts, shared))
    assert _payloads(got) == _payloads(expected)
    assert got.split(b"\r\n\r\n", 1)[0] == expected.split(b"\r\n\r\n", 1)[0]  # headers
    assert is_wire_ready(got)
    for line in _base64_lines(got):
        assert 0 < len(line) <= 76 and len(line) % 4 == 0
        binascii.a2b_base64(line, strict_mode=True)  # a whole number of groups, no padding...
    padded = [line for line in _base64_lines(got) if line.endswith(b"=")]
    assert len(padded) <= 2  # ...but at the end of each of the two bodies
    assert body_length(parts) == len(whole) and body_end(parts, 64) == whole[-64:]


def _payloads(message: bytes) -> list[bytes]:
    """Each body part's bytes, decoded as a mail reader decodes them."""
    parsed = email.message_from_bytes(message, policy=policy.SMTP)
    return [part.get_payload(decode=True) for part in parsed.walk() if not part.is_multipart()]


def _base64_lines(message: bytes) -> list[bytes]:
    """The base64 lines of both bodies (between each part's blank line and the boundary)."""
    lines: list[bytes] = []
    for part in message.split(b"\r\n--=_publisher_")[1:]:
        head, _, body = part.partition(b"\r\n\r\n")
        if b"base64" in head:
            lines += [line for line in body.split(b"\r\n") if line]
    return lines


def test_pieces_of_a_stored_body_name_each_fragment_apart() -> None:
    """Each fragment (a section, an item of an older body) is a shared part of its own, even
    next to another: joined, the two would make a part no other body has."""
    key = "k" * 20
    one, two, three = (Fragment.of(f"<tr>{n}</tr>", f"{n}\n") for n in ("one", "two", "three"))
    empty = Fragment.of("<tr>four</tr>", "")
    known = {f.sha: f for f in (one, two, three, empty)}

    def mark(f: Fragment) -> str:
        return f"<!--fragment-{key}-{f.sha}-->"

    body = f"<h2>A</h2>{mark(one)}{mark(two)}<h2>B</h2>{mark(three)}{mark(empty)}"
    got = pieces(body, key, known, html=True)
    assert got == [
        ("<h2>A</h2>", None),
        ("<tr>one</tr>", f"h{one.sha}"),
        ("<tr>two</tr>", f"h{two.sha}"),
        ("<h2>B</h2>", None),
        ("<tr>three</tr>", f"h{three.sha}"),
        ("<tr>four</tr>", f"h{empty.sha}"),
    ]
    assert "".join(t for t, _ in got) == expand(body, key, known, html=True)
    text = pieces(body, key, known, html=False)
    assert text[1:3] == [("one\n", f"t{one.sha}"), ("two\n", f"t{two.sha}")]
    assert len(text) == 5  # the HTML-only fragment has no text part
    assert "".join(t for t, _ in text) == expand(body, key, known, html=False)
