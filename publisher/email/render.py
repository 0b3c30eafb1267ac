"""Email bodies from templates/email/: HTML (autoescaped, CSS inlined) and plain text.

An edition is rendered ONCE with placeholder strings where each recipient differs (address,
unsubscribe and preferences links); the message builder swaps them per recipient. The
markers are random per digest (publisher.email.placeholders), so item text cannot fill them.

Two Jinja environments: HTML autoescapes every template whatever its extension; the text
environment does not escape, because "&amp;" would reach readers literally in text/plain, and
only plain text goes into it (item fields are stripped of markup at intake, publisher.text).
"""

from __future__ import annotations

import functools
import hashlib
import html as html_lib
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import css_inline
from jinja2 import Environment, FileSystemLoader, StrictUndefined, pass_context
from jinja2.filters import do_wordwrap
from jinja2.runtime import Context

from publisher.digest.assembly import DigestItem, pick_locale
from publisher.digest.edition_content import EditionContent, SectionContent
from publisher.email.placeholders import LEGACY, Placeholders
from publisher.i18n import gettext, use_locale
from publisher.i18n import jinja as i18n_jinja
from publisher.settings import Settings

# templates/email/ at the top level, mapped into the package by the link email/templates (a wheel
# holds the files themselves), so an installed publisher finds them without the source tree.
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"

# The fixed markers of digests assembled before markers were random (Placeholders.of(None)).
EMAIL, UNSUBSCRIBE_URL, PREFERENCES_URL = PLACEHOLDERS = LEGACY.all


@dataclass(frozen=True, slots=True)
class Branding:
    """What every email says about the sender, taken from the settings."""

    site_title: str
    base_url: str
    postal_address: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Branding:
        return cls(settings.site_title, settings.base_url, settings.postal_address)


@dataclass(frozen=True, slots=True)
class Fragment:
    """One item rendered once for one language: HTML (CSS inlined) and plain text, named by
    their content hash (a stored edition body names its fragments, publisher.email.fragments)."""

    html: str
    text: str
    sha: str

    @classmethod
    def of(cls, html: str, text: str) -> Fragment:
        return cls(html, text, hashlib.sha256(f"{html}\0{text}".encode()).hexdigest()[:32])


FragmentOf = Callable[[DigestItem], Fragment]
_STYLE = re.compile(r"<style>(.*?)</style>", re.S)


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    """Subject and both bodies of one email (digest bodies still hold the placeholders)."""

    subject: str
    html: str
    text: str
    language: str = ""


_SECTIONS = 512  # sections kept per frame (a fire sees tens to hundreds; each is a few KB)
_FRAMES = 64  # frames kept per renderer: languages x (footer or not) x "more items" counts
# constant frame HTML this long is stored once as a fragment, not in every body (the head and
# its styles, the wrapper, each section's heading row, the footer: 4 of an edition's 6 KB)
SHARED_LITERAL = 250
_FRAME_VALUES = (
    "subject", "preheader", "regions_label", "period_label", "count_label", "web_url", "note",
    "email", "unsubscribe_url", "preferences_url", "section_name", "section_count",
    "section_note",
)  # fmt: skip
_FRAME_PARTS = ("head", "note", "sections", "section", "section-note", "section-end", "item",
                "tail")  # fmt: skip


def _serialized(value: str, where: str) -> str:
    """``value`` as the CSS inliner's HTML serializer writes it in a tag (``attr``), a title
    or in text, after the parser normalised line breaks and NUL, so a filled frame equals an
    inlined document."""
    value = value.replace("\r\n", "\n").replace("\r", "\n").replace("&", "&amp;")
    value = value.replace("\xa0", "&nbsp;")
    if where == "attr":
        return value.replace('"', "&quot;").replace("\x00", "\ufffd")
    value = value.replace("\x00", "\ufffd" if where == "title" else "")
    return value.replace("<", "&lt;").replace(">", "&gt;")


@dataclass(frozen=True, slots=True)
class _Frame:
    """The inlined edition document of one language, cut into its parts; each part is a list
    of literal text and (value name, where: attr, title or text) holes."""

    parts: dict[str, tuple[str | tuple[str, str], ...]]
    item: tuple[str, str]  # the item row around its fragment
    text: _TextFrame
    literals: dict[str, Fragment] = field(default_factory=dict, compare=False)
    sections: dict[tuple[str, ...], Fragment] = field(default_factory=dict, compare=False)

    @classmethod
    def cut(cls, page: str, key: str, mark: Mapping[str, str], plain: _TextFrame) -> _Frame:
        names = {v: k for k, v in mark.items()}
        hole = re.compile("|".join(re.escape(v) for v in mark.values()))
        found = _cut_parts(page, f"<!--cut-{key}-([a-z-]+)-->", "edition.html")
        parts: dict[str, tuple[str | tuple[str, str], ...]] = {}
        for name, text in found.items():
            split: list[str | tuple[str, str]] = []
            at = 0
            for m in hole.finditer(text):
                where = "text"
                if text.rfind("<", 0, m.start()) > text.rfind(">", 0, m.start()):
                    where = "attr"
                elif text.rfind("<title>", 0, m.start()) > text.rfind("</title>", 0, m.start()):
                    where = "title"
                split += (text[at : m.start()], (names[m.group()], where))
                at = m.end()
            split.append(text[at:])
            parts[name] = tuple(split)
        before, _, after = found["item"].partition(f"<!--slot-{key}-->")
        return cls(parts, (before, after), plain)

    def fill(
        self, part: str, values: Mapping[str, str], named: Callable[[Fragment], str] | None = None
    ) -> str:
        """The part with its holes filled; ``named``: what stands instead of each long
        literal (a stored body's marker of it as a shared fragment, ``literal``)."""
        return "".join(
            (named(self.literal(p)) if named and len(p) >= SHARED_LITERAL else p)
            if isinstance(p, str)
            else _serialized(values[p[0]], p[1])
            for p in self.parts[part]
        )

    def section(self, section: SectionContent, fragment: FragmentOf) -> Fragment:
        """One section whole, heading and items, HTML and text: a fragment that every edition
        showing the same heading, note and items shares (a stored body names it once, and a
        sender encodes it once for thousands of region sets)."""
        found = [fragment(it) for it in section.items]
        key = (section.name, section.count_label, section.note, *(f.sha for f in found))
        made = self.sections.get(key)
        if made is None:
            part = {"section_name": section.name, "section_count": section.count_label,
                    "section_note": section.note}  # fmt: skip
            names = ("section", "section-note", "section-end") if section.note else (
                "section", "section-end")  # fmt: skip
            before, after = self.item
            html = [self.fill(name, part) for name in names]
            html += (before + f.html + after for f in found)
            text = [self.text.fill(name, part) for name in names]
            text += (f.text for f in found)
            if len(self.sections) >= _SECTIONS:
                self.sections.clear()
            made = self.sections[key] = Fragment.of("".join(html), "".join(text))
        return made

    def literal(self, text: str) -> Fragment:
        """A long piece of the frame's constant HTML as a fragment (HTML only): every stored
        body of this language names it instead of holding it."""
        found = self.literals.get(text)
        if found is None:
            found = self.literals[text] = Fragment.of(text, "")
        return found


def _cut_parts(page: str, cut: str, name: str) -> dict[str, str]:
    """``page`` cut at its ``cut()`` points into the frame's parts, by name."""
    pieces = re.split(cut, page)
    found = dict(zip(["head", *pieces[1::2]], pieces[0::2], strict=True))
    if sorted(found) != sorted(_FRAME_PARTS):
        raise RuntimeError(f"{name} is missing cut points: {sorted(found)}")
    return found


Wrap = Callable[[str], str]
TextPiece = str | tuple[str] | tuple[Wrap, tuple["TextPiece", ...]]
"""Literal text, a value's hole (its name), or a filter applied to what its pieces make."""


@dataclass(frozen=True, slots=True)
class _TextFrame:
    """The plain-text edition of one language cut into the same parts as the HTML frame. A
    value a filter reshapes (a wrapped note or footer line, the subject's underline) is a span
    that the filter is applied to once its holes are filled, so a filled frame equals the
    template rendered whole."""

    parts: dict[str, tuple[TextPiece, ...]]

    @classmethod
    def cut(cls, text: str, key: str, mark: Mapping[str, str], spans: Sequence[Wrap]) -> _TextFrame:
        names = {v: k for k, v in mark.items()}
        token = re.compile(
            "|".join([f"zs{key}(?P<open>[0-9]+)s", f"(?P<close>zs{key}e)",
                      *(re.escape(v) for v in mark.values())])
        )  # fmt: skip
        found = _cut_parts(text, f"<cut-{key}-([a-z-]+)>", "edition.txt")
        if found["item"] != f"slot-{key}\n":
            raise RuntimeError("edition.txt: an item's part must be its slot alone on a line")
        parts: dict[str, tuple[TextPiece, ...]] = {}
        for name, part in found.items():
            stack: list[tuple[Wrap | None, list[TextPiece]]] = [(None, [])]
            at = 0
            for m in token.finditer(part):
                stack[-1][1].append(part[at : m.start()])
                at = m.end()
                if m.group("open") is not None:
                    stack.append((spans[int(m.group("open"))], []))
                elif m.group("close") is not None:
                    wrap, inner = stack.pop()
                    if wrap is None:
                        raise RuntimeError("edition.txt: a filter span closes twice")
                    stack[-1][1].append((wrap, tuple(p for p in inner if p != "")))
                else:
                    stack[-1][1].append((names[m.group()],))
            stack[-1][1].append(part[at:])
            if len(stack) != 1:
                raise RuntimeError("edition.txt: a filter span is not closed")
            parts[name] = tuple(p for p in stack[0][1] if p != "")
        return cls(parts)

    def fill(self, part: str, values: Mapping[str, str]) -> str:
        return _filled(self.parts[part], values)


def _filled(pieces: tuple[TextPiece, ...], values: Mapping[str, str]) -> str:
    out = []
    for p in pieces:
        if isinstance(p, str):
            out.append(p)
        elif len(p) == 1:
            out.append(values[p[0]])
        else:
            out.append(p[0](_filled(p[1], values)))
    return "".join(out)


def _underline(value: str, char: str = "=") -> str:
    """A line of ``char`` as long as ``value`` (a plain-text heading's rule)."""
    return char * len(value)


class EmailRenderer:
    """The template environments and CSS inliner, built once and reused."""

    def __init__(self, templates_dir: Path = TEMPLATES_DIR) -> None:
        loader = FileSystemLoader(str(templates_dir))
        common: dict[str, Any] = {
            "loader": loader,
            "undefined": StrictUndefined,
            "trim_blocks": True,
            "lstrip_blocks": True,
            "keep_trailing_newline": True,
            "auto_reload": False,  # no stat() of the template per edition; templates ship fixed
        }
        self._html = i18n_jinja.install(Environment(autoescape=True, **common))
        # plain text only: "&amp;" would reach readers literally in text/plain
        self._text = i18n_jinja.install(Environment(autoescape=False, **common))  # noqa: S701
        self._text.filters["underline"] = _underline
        # the plain-text frame: the same templates, with each reshaping filter marking a span
        self._text_frame = i18n_jinja.install(Environment(autoescape=False, **common))  # noqa: S701
        self._text_frame.filters["wordwrap"] = self._span(
            lambda a, k: lambda value: do_wordwrap(self._text, value, *a, **k)
        )
        self._text_frame.filters["underline"] = self._span(
            lambda a, k: lambda value: _underline(value, *a, **k)
        )
        self._inliner = css_inline.CSSInliner(
            load_remote_stylesheets=False, keep_style_tags=False, keep_link_tags=False
        )
        base = (templates_dir / "_base.html").read_text(encoding="utf-8")
        found = _STYLE.search(base)
        self._css = found.group(1) if found else ""
        self._frames: dict[tuple[str, Branding, bool, int], _Frame] = {}

    @staticmethod
    def _span(make: Callable[[tuple[Any, ...], dict[str, Any]], Wrap]) -> Callable[..., str]:
        """A frame filter: the value between span marks, the filter (with its arguments) kept
        in the render's ``frame_spans`` to apply once the frame is filled."""

        @pass_context
        def span(context: Context, value: str, *args: Any, **kwargs: Any) -> str:
            spans: list[Wrap] = context["frame_spans"]
            key = context["frame_key"]
            spans.append(make(args, kwargs))
            return f"zs{key}{len(spans) - 1}s{value}zs{key}e"

        return span

    def _both(self, name: str, context: dict[str, Any]) -> tuple[str, str]:
        page = self._html.get_template(f"{name}.html").render(context)
        text = self._text.get_template(f"{name}.txt").render(context)
        return self._inliner.inline(page), text

    def item_fragment(self, item: DigestItem, locale: str) -> Fragment:
        """``item`` as every edition in ``locale`` shows it: rendered and inlined once, reused."""
        context = {"it": item, "locale": locale}
        with use_locale(locale):
            page = self._html.get_template("_edition_item.html").render(context)
            text = self._text.get_template("_edition_item.txt").render(context)
        return Fragment.of(css_inline.inline_fragment(page, self._css), text)

    def edition(
        self,
        content: EditionContent,
        branding: Branding,
        marks: Placeholders,
        fragment: FragmentOf,
        *,
        footer: bool = True,
        named: Callable[[Fragment], str] | None = None,
    ) -> RenderedEmail:
        """An edition composed from its items' fragments and its language's frame (header,
        notes, section headings, footer: rendered and inlined once, ``_Frame``), so an edition
        costs string joins, not Jinja and CSS inlining. ``footer=False``: the web copy.
        ``named``: what stands instead of each section (a stored body's marker), given the
        section's fragment (heading and items, the same in every edition that shows that section
        so); the frame's long constant pieces are named too (fragments of HTML only)."""
        frame = self._frame(content.locale, branding, footer=footer, more=content.more)
        values = {
            "subject": content.subject, "preheader": content.preheader,
            "regions_label": content.regions_label, "period_label": content.period_label,
            "count_label": content.count_label, "web_url": content.web_url,
            "note": content.note, "email": marks.email,
            "unsubscribe_url": marks.unsubscribe_url, "preferences_url": marks.preferences_url,
        }  # fmt: skip
        text_frame = frame.text
        out = [frame.fill("head", values, named)]
        out_text = [text_frame.fill("head", values)]
        if content.note:
            out.append(frame.fill("note", values, named))
            out_text.append(text_frame.fill("note", values))
        out.append(frame.fill("sections", values, named))
        out_text.append(text_frame.fill("sections", values))
        for section in content.sections:
            whole = frame.section(section, fragment)
            if named is None:
                out.append(whole.html)
                out_text.append(whole.text)
            else:
                out_text.append(named(whole))
                out.append(out_text[-1])
        out.append(frame.fill("tail", values, named))
        out_text.append(text_frame.fill("tail", values))
        text = "".join(out_text)
        return RenderedEmail(content.subject, "".join(out), text, content.locale)

    def _frame(self, locale: str, branding: Branding, *, footer: bool, more: int) -> _Frame:
        key = (locale, branding, footer, more)
        found = self._frames.get(key)
        if found is None:
            if len(self._frames) >= _FRAMES:
                self._frames.clear()
            found = self._frames[key] = self._render_frame(locale, branding, footer, more)
        return found

    def _render_frame(self, locale: str, branding: Branding, footer: bool, more: int) -> _Frame:
        """edition.html rendered once with a marker for every value that differs between
        editions, CSS inlined, then cut at its ``cut()`` points (one section, note, item)."""
        key = secrets.token_hex(8)
        mark = {name: f"zq{key}{n}qz" for n, name in enumerate(_FRAME_VALUES)}
        item = SimpleNamespace(id=0)
        section = SimpleNamespace(name=mark["section_name"], count_label=mark["section_count"],
                                  note=mark["section_note"], items=(item,))  # fmt: skip
        content = SimpleNamespace(
            locale=locale, subject=mark["subject"], preheader=mark["preheader"],
            regions_label=mark["regions_label"], period_label=mark["period_label"],
            count_label=mark["count_label"], web_url=mark["web_url"], note=mark["note"],
            sections=(section,), more=more,
        )  # fmt: skip
        context = {
            "c": content, "b": branding, "footer": footer, "email": mark["email"],
            "unsubscribe_url": mark["unsubscribe_url"],
            "preferences_url": mark["preferences_url"], "slot": lambda _id: f"slot-{key}",
            "cut": lambda name: f"cut-{key}-{name}",
        }  # fmt: skip
        spans: list[Wrap] = []
        with use_locale(locale):
            page = self._html.get_template("edition.html").render(context)
            text = self._text_frame.get_template("edition.txt").render(
                context, frame_key=key, frame_spans=spans, cut=lambda name: f"<cut-{key}-{name}>"
            )
        text_frame = _TextFrame.cut(text, key, mark, spans)
        return _Frame.cut(self._inliner.inline(page), key, mark, text_frame)

    def confirmation(
        self, *, confirm_url: str, region_names: list[str], branding: Branding, locale: str = "en"
    ) -> RenderedEmail:
        """The double opt-in email of one person (rendered per person: it is rare)."""
        lang = pick_locale(locale)
        with use_locale(lang):
            subject = gettext("Confirm your subscription to %(site)s") % {
                "site": branding.site_title
            }
            context = {
                "subject": subject,
                "lang": lang,
                "b": branding,
                "region_names": region_names,
                "confirm_url": confirm_url,
            }
            page, text = self._both("confirm", context)
        return RenderedEmail(subject, page, text, lang)


@functools.cache
def default_renderer() -> EmailRenderer:
    """The renderer over the shipped templates, built once per process."""
    return EmailRenderer()


def fill(body: str, values: Mapping[str, str], *, html: bool) -> str:
    """``body`` with each placeholder replaced (HTML-escaped in HTML bodies)."""
    for placeholder, value in values.items():
        body = body.replace(placeholder, html_lib.escape(value) if html else value)
    return body


def public_copy(
    body: str, *, base_url: str, html: bool = True, marks: Placeholders = LEGACY
) -> str:
    """A digest body with no one's details: the web archive copy ("view in browser")."""
    values = marks.values(email="", unsubscribe_url=f"{base_url}/", preferences_url=f"{base_url}/")
    return fill(body, values, html=html)
