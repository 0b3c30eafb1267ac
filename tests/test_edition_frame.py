"""The edition frame is rendered and CSS-inlined once per language, then filled per edition:
the filled frame must equal rendering and inlining the whole edition document, for any text."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from publisher.digest.assembly import DigestItem
from publisher.digest.edition_content import EditionContent, SectionContent
from publisher.email.placeholders import Placeholders
from publisher.email.render import Branding, EmailRenderer, RenderedEmail, default_renderer
from publisher.i18n import use_locale

TEXT = st.text(st.characters(codec="utf-8"), max_size=40)
NASTY = st.sampled_from(["", "a & b", "<b>x</b>", '"q" \'s\'', "\xa0nbsp", "l1\r\nl2\rl3",
                         "nul\x00", "\u202eevil", "&amp; &lt;", "Petén · Ñ"])  # fmt: skip
WORD = st.sampled_from(["word", "a", "longer-hyphenated-word", "x" * 80, "Ñandú", "\n", "  ",
                        "tab\tbed", "end."])  # fmt: skip
WORDS = st.lists(WORD, max_size=40).map(" ".join)
VALUE = st.one_of(NASTY, TEXT, WORDS)
URL = st.builds(lambda s: f"https://news.example.org/editions/{s}",
                st.text("ab&\"<>'% ", max_size=8))  # fmt: skip
WHEN = datetime(2026, 11, 30, tzinfo=UTC)


def item(n: int, title: str) -> DigestItem:
    return DigestItem(id=n, title=title, summary="s & t", url=f"https://e.org/items/{n}",
                      region_names=("Guatemala",), published=WHEN, date_label="Nov 30")  # fmt: skip


@st.composite
def contents(draw: st.DrawFn) -> EditionContent:
    sections, n = [], 0
    for _ in range(draw(st.integers(1, 3))):
        items = []
        for _ in range(draw(st.integers(0, 3))):
            n += 1
            items.append(item(n, draw(VALUE)))
        sections.append(SectionContent(region="gt", name=draw(VALUE), note=draw(VALUE),
                                       count_label=draw(VALUE), items=tuple(items)))  # fmt: skip
    return EditionContent(
        regions=("gt",), regions_label=draw(VALUE), week="2026-W48",
        locale=draw(st.sampled_from(["en", "es", "pt"])), subject=draw(VALUE),
        preheader=draw(VALUE), period_label=draw(VALUE), count_label=draw(VALUE),
        web_url=draw(URL), note=draw(VALUE), sections=tuple(sections),
        item_ids=tuple(range(1, n + 1)), more=draw(st.sampled_from([0, 1, 7])),
    )  # fmt: skip


def whole_document(renderer: EmailRenderer, c: EditionContent, b: Branding, marks: Placeholders,
                   *, footer: bool) -> str:  # fmt: skip
    """The edition as one Jinja render + one CSS inlining of the whole document (the old way)."""
    context = {
        "c": c, "b": b, "footer": footer, "email": marks.email,
        "unsubscribe_url": marks.unsubscribe_url, "preferences_url": marks.preferences_url,
        "slot": lambda item_id: f"frag-REF-{item_id}", "cut": lambda name: f"cut-REF-{name}",
    }  # fmt: skip
    with use_locale(c.locale):
        page = renderer._html.get_template("edition.html").render(context)
    page = re.sub(r"<!--cut-REF-[a-z-]+-->", "", renderer._inliner.inline(page))
    for s in c.sections:
        for it in s.items:
            page = page.replace(
                f"<!--frag-REF-{it.id}-->", renderer.item_fragment(it, c.locale).html, 1
            )
    return page


def whole_text(renderer: EmailRenderer, c: EditionContent, b: Branding, marks: Placeholders,
               *, footer: bool) -> str:  # fmt: skip
    """The plain-text edition as one Jinja render of edition.txt (the old way), each item's
    slot line replaced by its fragment's text."""
    context = {
        "c": c, "b": b, "footer": footer, "email": marks.email,
        "unsubscribe_url": marks.unsubscribe_url, "preferences_url": marks.preferences_url,
        "slot": lambda item_id: f"frag-REF-{item_id}", "cut": lambda name: "",
    }  # fmt: skip
    with use_locale(c.locale):
        text = renderer._text.get_template("edition.txt").render(context)
    for s in c.sections:
        for it in s.items:
            text = text.replace(f"frag-REF-{it.id}\n", renderer.item_fragment(it, c.locale).text, 1)
    return text


@settings(max_examples=150, deadline=None)
@given(content=contents(), footer=st.booleans(), site=VALUE, postal=VALUE)
def test_a_filled_frame_equals_the_whole_document_inlined(
    content: EditionContent, footer: bool, site: str, postal: str
) -> None:
    """Both bodies: the HTML frame against the whole document inlined, the plain-text frame
    (its wrapped notes and footer line, the subject's underline) against edition.txt whole."""
    renderer = default_renderer()
    branding = Branding(site, "https://news.example.org", postal)
    marks = Placeholders.fresh()
    made: RenderedEmail = renderer.edition(
        content, branding, marks, lambda it: renderer.item_fragment(it, content.locale),
        footer=footer,
    )  # fmt: skip
    assert made.html == whole_document(renderer, content, branding, marks, footer=footer)
    assert made.text == whole_text(renderer, content, branding, marks, footer=footer)


def test_the_frame_is_rendered_once_per_language() -> None:
    renderer = EmailRenderer()
    branding = Branding("Site", "https://news.example.org", "Street 1")
    for n in range(5):
        content = EditionContent(
            regions=("gt",), regions_label=f"R{n}", week="2026-W48", locale="es",
            subject=f"S{n}", preheader="p", period_label="w", count_label="1", web_url="https://x/",
            note="", sections=(SectionContent("gt", f"G{n}", "", "1", (item(n + 1, "t"),)),),
            item_ids=(n + 1,), more=0,
        )  # fmt: skip
        made = renderer.edition(content, branding, Placeholders.fresh(),
                                lambda it: renderer.item_fragment(it, "es"))  # fmt: skip
        assert f"G{n}" in made.html and "zq" not in made.html and "cut-" not in made.html
    assert len(renderer._frames) == 1


@settings(max_examples=1000, deadline=None)
@given(
    name=st.sampled_from(["Subject", "List-Id", "X-Long-Header-Name"]),
    value=st.one_of(
        st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=90),
        st.text(" !\"'()<>@,;:=?aZ9.-_", max_size=90),
        st.sampled_from(["=?utf-8?q?x?=", "a =?x", "Your news: Guatemala, week 48 of 2026"]),
        st.lists(
            st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=80),
            min_size=1,
            max_size=14,
        ).map(" ".join),
        st.lists(
            st.sampled_from(
                [
                    "Your",
                    "news:",
                    "Antigua",
                    "and",
                    "Barbuda,",
                    "x" * 70,
                    "week",
                    "49",
                    "of",
                    "2026",
                ]
            ),
            max_size=20,
        ).map(" ".join),
    ),
)
def test_the_plain_header_shortcut_folds_like_the_email_policy(name: str, value: str) -> None:
    from email import policy

    from publisher.email.message import _PLAIN, fold_header

    if name == "Subject" and not _PLAIN.fullmatch(value):
        return  # written as encoded words (the next test)
    expected = policy.SMTP.header_factory(name, value).fold(policy=policy.SMTP).encode("ascii")
    assert fold_header(name, value) == expected


def test_the_messenger_keeps_only_the_last_digests() -> None:
    """Rows are claimed in id order, so a bounded cache loads each digest once per run of its
    rows, and ten thousand region sets do not keep ten thousand bodies."""
    from publisher.pipeline.send import DigestMessenger

    made: list[tuple[int, str]] = []

    def load(digest_id: int, locale: str) -> object:
        made.append((digest_id, locale))
        return object()

    messenger = DigestMessenger(load, size=2)  # type: ignore[arg-type]
    for digest_id in [1, 1, 2, 2, 1, 3, 3, 1, 2]:
        messenger.mail(digest_id, "en")
    assert made == [(1, "en"), (2, "en"), (3, "en"), (2, "en")]
    assert messenger.loads == 4 and len(messenger._mails) == 2


def test_the_messenger_loads_a_claimed_chunk_with_one_call() -> None:
    """``prepare`` loads every new (digest, language) of a chunk together; building its
    messages then loads nothing more, and a digest already kept is not asked for again."""
    from publisher.delivery.ledger import Claimed, Recipient
    from publisher.pipeline.send import DigestMessenger

    singles: list[tuple[int, str]] = []
    batches: list[set[tuple[int, str]]] = []

    class Mail:
        wire_ready = None  # not known from its making: the messenger checks the first message

        def build(self, **kw: object) -> bytes:
            return b"Subject: x\r\n\r\nbody\r\n"

    def load(digest_id: int, locale: str) -> object:
        singles.append((digest_id, locale))
        return Mail()

    def load_many(pairs: object) -> dict[tuple[int, str], object]:
        batches.append(set(pairs))  # type: ignore[call-overload]
        return {pair: Mail() for pair in pairs}  # type: ignore[attr-defined]

    def chunk(*rows: tuple[int, str]) -> list[Recipient]:
        return [
            Recipient(Claimed(n, d, n, 1, datetime(2026, 12, 1, tzinfo=UTC), f"<{n}@x>", loc),
                      f"r{n}@example.org", f"{n:032x}")
            for n, (d, loc) in enumerate(rows, start=1)
        ]  # fmt: skip

    messenger = DigestMessenger(load, load_many=load_many)  # type: ignore[arg-type]
    first = chunk((1, "en"), (1, "en"), (2, "en"), (2, "es"), (3, "en"))
    messenger.prepare(first)
    assert batches == [{(1, "en"), (2, "en"), (2, "es"), (3, "en")}]
    for recipient in first:
        messenger.build(recipient)
    assert singles == []
    messenger.prepare(chunk((3, "en"), (4, "pt")))
    assert batches[1:] == [{(4, "pt")}]
    messenger.build(chunk((5, "en"))[0])  # not prepared: loaded alone
    assert singles == [(5, "en")] and messenger.loads == 6


@settings(max_examples=500, deadline=None)
@given(
    st.text(
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x00"),
        min_size=1,
        max_size=200,
    )
)
def test_any_subject_folds_within_78_columns_and_reads_back_the_same(value: str) -> None:
    """Subjects that are not plain ASCII are written as base64 encoded words; a mail reader
    decodes exactly the text (the email package reads them back), and no line is too long."""
    from email import message_from_bytes, policy

    from publisher.email.message import _PLAIN, fold_header

    folded = fold_header("Subject", value)
    message = message_from_bytes(folded + b"\r\nbody\r\n", policy=policy.SMTP)
    assert all(len(line) <= 78 for line in folded.split(b"\r\n"))
    if not _PLAIN.fullmatch(value):
        assert str(message["Subject"]) == value


def test_a_fresh_process_loads_digests_to_send(tmp_path: Path) -> None:
    """A worker's first act is loading digests: nothing has configured the ORM's mappers yet,
    and the light model construction must work there too."""
    import subprocess
    import sys

    from publisher.models import Digest
    from publisher.runtime import Runtime
    from publisher.settings import Settings

    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    rt = Runtime(Settings(_env_file=None, database_url=url, var_dir=tmp_path, secret_key="k"))
    rt.migrate()
    with rt.session() as session:
        session.add(Digest(region="gt", regions="gt", week="2026-W49", status="assembled",
                           subject="S", html="<p>h</p>", text="t", locale="en",
                           window_start=datetime(2026, 11, 24, tzinfo=UTC),
                           window_end=datetime(2026, 12, 1, tzinfo=UTC),
                           created=datetime(2026, 12, 1, tzinfo=UTC)))  # fmt: skip
    rt.close()
    code = (
        "import sys; from sqlmodel import Session, create_engine\n"
        "from publisher.store.edition_digests import digests_to_send\n"
        "with Session(create_engine(sys.argv[1])) as s:\n"
        "    d, r = digests_to_send(s, [(1, 'en')])[(1, 'en')]\n"
        "    print(d.id, d.region, d.subject, r)\n"
    )
    done = subprocess.run([sys.executable, "-c", code, url], capture_output=True, text=True)
    assert done.stdout.split() == ["1", "gt", "S", "None"], done.stderr[-2000:]
