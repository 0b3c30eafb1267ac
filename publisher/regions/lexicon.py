"""Phrases that name regions, in English and Spanish, compiled into a first-token index.

Two sources: names and aliases generated from the M49 tree data (M49, CSV short and CLDR names)
and the hand-written ``HAND`` table below (demonyms, usual aliases, region phrases, blockers).
Matching works on byte tokens of the text (see ``tokens``): the index is keyed by the first token
in each spelling a writer may use (as written, without accents, upper case; lower case only for
phrases written in lower case here, such as Spanish demonyms), so the case rules cost nothing at
match time. The remaining tokens of a phrase are compared folded (lower case, no accents).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

from publisher.regions.tree import RegionTree, load_document

# Entry kinds.
REGION, BLOCK, ES_ONLY, NOT_SHOUTED = 0, 1, 2, 3
Entry = tuple[tuple[bytes, ...], int, str, int]  # (folded tail tokens, their number, slug, kind)

# Every ASCII byte that is not a letter or digit separates tokens; bytes >= 0x80 stay in words.
SEP_TABLE = bytes(b if chr(b).isalnum() else 32 for b in range(128)) + bytes(range(128, 256))
# Non-ASCII separators, rewritten before the byte table applies (’ ‘ “ ” – — and no-break space).
_UNICODE_SEPS = ("\u2019", "\u2018", "\u201c", "\u201d", "\u2013", "\u2014", "\u00a0")
_QUOTES_DASHES = re.compile(rb"\xe2\x80[\x93\x94\x98\x99\x9c\x9d]")  # the first six, as UTF-8
SEP_CLASS = r"\x00-\x2f\x3a-\x40\x5b-\x60\x7b-\x7f" + "".join(_UNICODE_SEPS)
_WORDS = re.compile(f"[^{SEP_CLASS}]+")


def raw_bytes(text: str) -> bytes:
    """UTF-8 bytes of text (NFC) with the non-ASCII separators already turned into spaces."""
    if text.isascii():
        return text.encode()
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    data = _QUOTES_DASHES.sub(b" ", text.encode())
    return data.replace(b"\xc2\xa0", b" ") if "\u00a0" in text else data


def tokens(text: str) -> list[bytes]:
    """Word tokens as bytes, case and accents kept; the fast path of inference."""
    return raw_bytes(text).translate(SEP_TABLE).split()


def fold(text: str) -> str:
    """Lower case without accents: "México" -> "mexico"."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


class _Folded(dict[bytes, bytes]):
    """Memo of folded tokens; ``NORM[tok]`` and ``map(NORM.__getitem__, ...)`` run in C."""

    def __missing__(self, tok: bytes) -> bytes:
        if len(self) > 200_000:
            self.clear()
        got = self[tok] = fold(tok.decode("utf-8", "ignore")).encode()
        return got


NORM = _Folded()
norm = NORM.__getitem__


def es_forms(word: str) -> list[str]:
    """Spanish demonym inflections: masculine, feminine, plurals ("mexicano" -> 4 forms)."""
    if word.endswith("o"):
        return [word, word[:-1] + "a", word + "s", word[:-1] + "as"]
    if word.endswith(("és", "án")):  # guyanés -> guyanesa, guyaneses; alemán -> alemanes
        base = word[:-2] + ("es" if word.endswith("és") else "an")
        return [word, base + "a", base + "es", base + "as"]
    if word.endswith(("e", "a")):
        return [word, word + "s"]
    if word.endswith("í"):
        return [word, word + "es", word + "s"]
    return [word, word + "es"]


# One "slug: phrase; phrase; ..." per line (a slug may take several lines). "Word+" adds the
# English plural, "word~" the Spanish inflections, "^Phrase" counts only in Spanish text,
# "!PHRASE" not in all-caps text; the slug "-" blocks a phrase (it and its parts name nothing).
# The last block: capitals and migration hotspots of the Americas whose names are unambiguous.
HAND = """
bz: Belizean+; beliceño~
cr: Costa Rican+; Tico+; costarricense~; tico~
sv: Salvadoran+; Salvadorean+; salvadoreño~
gt: Guatemalan+; guatemalteco~
hn: Honduran+; hondureño~
mx: Mexican+; mexicano~; Méjico; Estados Unidos Mexicanos
ni: Nicaraguan+; nicaragüense~; nica~
pa: Panamanian+; panameño~
ai: Anguillan+; anguilense~
ag: Antiguan+; antiguano~
aw: Aruban+; arubeño~
bs: Bahamian+; bahameño~
bb: Barbadian+; Bajan+; barbadense~
bq: Bonaire; Sint Eustatius; Dutch Caribbean islands
ky: Caymanian+; Cayman; caimanés~
cu: Cuban+; cubano~
cw: Curaçaoan+; curazoleño~
do: Dominican+; dominicano~; Dominican Rep
dm: dominiqués~
sx: Sint Maartener+; St Maarten
gd: Grenadian+
gp: Guadeloupean+
ht: Haitian+; haitiano~
jm: Jamaican+; jamaiquino~; jamaicano~
mq: Martinican+; martiniqués~
ms: Montserratian+; montserratense~
pr: Puerto Rican+; puertorriqueño~; boricua~
bl: St Barts; St Barths; Saint Barths
kn: Kittitian+; Nevisian+; St Kitts; Saint Kitts; Nevis
lc: Saint Lucian+; St Lucia; santalucense~
vc: Vincentian+; St Vincent; Saint Vincent
tt: Trinidadian+; Tobagonian+; trinitense~; Trinidad & Tobago; Trinidad-Tobago
tc: Turks and Caicos; Turks & Caicos; Islas Turcas y Caicos; Turks and Caicos Islander+
vi: !USVI; US Virgin Islands; U.S. Virgin Islands; Islas Vírgenes Estadounidenses
vg: BVI; British Virgin Islander+
ar: Argentine+; Argentinian+; argentino~
bo: Bolivian+; boliviano~
br: Brazilian+; brasileño~; brasilero~
cl: Chilean+; chileno~
co: Colombian+; colombiano~
ec: Ecuadorian+; Ecuadorean+; ecuatoriano~
fk: Falklands; Malvinas; Falkland Islander+; malvinense~
gf: French Guianese; guayanés francés
gy: Guyanese; guyanés~; guyanense~
py: Paraguayan+; paraguayo~
pe: Peruvian+; peruano~
sr: Surinamese; Surinamer+; surinamés~
uy: Uruguayan+; uruguayo~
ve: Venezuelan+; venezolano~
gs: South Georgia; Georgia del Sur
bm: Bermudian+; Bermudan+; bermudeño~
ca: Canadian+; canadiense~
gl: Greenlandic; Greenlander+; groenlandés~
pm: Saint-Pierre; St Pierre and Miquelon; Saint-Pierrais
us: American+; !US; USA; U.S.; U.S.A.; United States; estadounidense~; norteamericano~; EEUU; EE.UU.
us: EE. UU.; E.U.A.; New Mexico; New Jersey; Jersey City; Nuevo México; Nueva Jersey
americas: Americas; Américas; ^América; Organization of American States
americas: Organización de los Estados Americanos; Western Hemisphere; hemisferio occidental
latin-america-and-the-caribbean: Latin America; Latin American+; América Latina; Latinoamérica
latin-america-and-the-caribbean: latinoamericano~; Latin America & the Caribbean
central-america: Central American+; América Central; Centroamérica; centroamericano~; Mesoamerica
central-america: Mesoamérica; mesoamericano~; Northern Triangle; Triángulo Norte
central-america: North of Central America; Norte de Centroamérica
caribbean: Caribbean; Caribe; caribeño~; CARICOM; Caricom; West Indies
caribbean: Antillas; antillano~; Dutch Caribbean
south-america: South American+; Sudamérica; Suramérica; América del Sur; sudamericano~
south-america: suramericano~; Southern Cone; Cono Sur; Andean; andino~
northern-america: North America; North American+; Norteamérica; América del Norte
africa: African+; africano~
western-africa: West Africa; West African+; África Occidental; África del Oeste
eastern-africa: East Africa; East African+; Horn of Africa; Cuerno de África; África Oriental
northern-africa: North Africa; North African+; Norte de África; África del Norte; Maghreb; Magreb
middle-africa: Central Africa; África Central
europe: European+; europeo~; European Union; Unión Europea; EU
asia: Asian+; asiático~
western-asia: Middle East; Medio Oriente; Oriente Medio; Oriente Próximo
south-eastern-asia: South-East Asia; South East Asia; Southeast Asian+; Sudeste Asiático
southern-asia: South Asia; South Asian+; Asia del Sur
eastern-asia: East Asia; East Asian+
central-asia: Central Asian+
oceania: Pacific Islands; Islas del Pacífico
southern-europe: Balkans; Western Balkans; Balcanes
northern-europe: Scandinavia; Escandinavia; Nordic countries
fm: Micronesia; Federated States of Micronesia
es: Spaniard+; española; españolas; españoles
fr: Frenchman; Frenchwoman; Frenchmen; francesa; franceses; francesas
de: German+; alemán~
it: Italian+; italiano~
pt: portuguesa; portugueses; portuguesas
gb: British; Briton+; Britain; Great Britain; England; Scotland; Wales; UK; U.K.; británico~
gb: Inglaterra; Escocia; Gran Bretaña
nl: Netherlands; neerlandesa; neerlandeses
ch: Swiss; suizo~
be: Belgian+; belga~
se: Swedish; Swede+; sueco~
no: Norwegian+; noruego~
pl: Polish; polaco~
ua: Ukrainian+; ucraniano~; ucranio~
ru: Russian+; ruso~
tr: Turkey; Turkish; turco~
gr: Greek+; griego~
cn: Chinese; chino; chinos; chinas
in: Indian+
jp: Japanese; japonés~
kr: Korea; South Korean+; Korean+; surcoreano~; coreano~; Corea
kp: North Korean+; norcoreano~
ph: Filipino+; Philippine; filipino~
id: Indonesian+; indonesio~
vn: Vietnamese; vietnamita~
bd: Bangladeshi+; bangladesí~
pk: Pakistani+; pakistaní~; paquistaní~
af: Afghan+; afgano~
ir: Iranian+; iraní~
iq: Iraqi+; iraquí~
sy: Syrian+; sirio~
lb: Lebanese; libanés~
jo: Jordanian+; jordano~
il: Israeli+; israelí~
ps: Palestine; Palestinian+; palestino~; Gaza; West Bank; Cisjordania
sa: Saudi+; saudí~
ye: Yemeni+; yemení~
ae: UAE; Emirati+; emiratí~; EAU
eg: Egyptian+; egipcio~
ly: Libyan+; libio~
tn: Tunisian+; tunecino~
ma: Moroccan+; marroquí~
dz: Algerian+; argelino~
ng: Nigerian+; nigeriano~; Niger Delta
ne: Nigerien+; nigerino~
sn: Senegalese; senegalés~
gh: Ghanaian+; ghanés~
ml: Malian+; maliense~
et: Ethiopian+; etíope~
er: Eritrean+; eritreo~
so: Somali+; Somalian+; somalí~
sd: Sudanese; sudanés~
ss: South Sudanese; sursudanés~
ke: Kenyan+; keniano~; keniata~
ug: Ugandan+; ugandés~
cd: Congolese; congoleño~; DRC; RDC; RD Congo; D.R. Congo; Congo-Kinshasa
cm: Cameroonian+; camerunés~
ao: Angolan+; angoleño~
za: South African+; sudafricano~
au: Australian+; australiano~
nz: New Zealander+; neozelandés~
np: Nepali+; Nepalese; nepalí~
lk: Sri Lankan+; esrilanqués~
td: Chadian+; chadiano~
gn: Guinean+; guineano~
gw: Bissau-Guinean+; Guinea Bissau
gq: Equatorial Guinean+; ecuatoguineano~
pg: Papua New Guinean+
cf: Central African+; !CAR; centroafricano~
bf: Burkinabe; Burkinabè; burkinés~
ci: Ivorian+; Ivory Coast; Costa de Marfil; marfileño~; Cote d'Ivoire
mr: Mauritanian+; mauritano~
mm: Burmese; Burma; Birmania; birmano~
zw: Zimbabwean+; zimbabuense~
cz: Czech Republic; República Checa; Czech; checo~
mk: Macedonia; Macedonian+
sz: Swaziland; Suazilandia
tl: East Timor; Timor Oriental; Timorese
va: Vatican
mo: Macau
tw: Taiwanese; taiwanés~
ge: Georgian+; georgiano~
am: Armenian+; armenio~
cv: Cape Verdean+; caboverdiano~
th: Thai; tailandés~
my: Malaysian+; malasio~
kh: Cambodian+; camboyano~
la: Laotian+
ro: Romanian+; rumano~
hu: Hungarian+; húngaro~
at: Austrian+; austriaco~; austríaco~
ie: Irish; irlandés~
dk: Danish; Dane+; danés~
fi: Finnish; finlandés~
rw: Rwandan+; ruandés~
bi: Burundian+; burundés~
re: Réunion Island
-: Inter-American; Pan-American; Interamerican; interamericano~; panamericano~; New Guinea
-: Nueva Guinea; Indian Ocean; Océano Índico
mx: Tapachula; Tijuana; Ciudad Juárez; Reynosa; Matamoros; Nuevo Laredo; Mexicali; Piedras Negras
mx: Monterrey; Chiapas; Oaxaca; Tenosique; Ciudad Hidalgo
gt: Quetzaltenango; Huehuetenango; Tecún Umán; Esquipulas; Petén
hn: San Pedro Sula; Tegucigalpa; Choluteca; Danlí
sv: San Salvador
ni: Managua
pa: Darién; Darien Gap; Bajo Chiquito; Lajas Blancas; Metetí
co: Bogotá; Cúcuta; Necoclí; Medellín; Barranquilla; Ipiales; La Guajira; Riohacha; Maicao
ve: Caracas; Maracaibo; Táchira
ec: Quito; Guayaquil; Huaquillas; Tulcán
pe: Lima; Tumbes; Tacna; Arequipa
br: Roraima; Pacaraima; Boa Vista; Manaus; São Paulo; Brasília; Rio de Janeiro
cl: Colchane; Santiago de Chile; Iquique; Arica; Antofagasta
ar: Buenos Aires
bo: Cochabamba
uy: Montevideo
py: Asunción
sr: Paramaribo
ht: Port-au-Prince; Cap-Haïtien; Les Cayes
do: Santo Domingo; Dajabón
cu: Havana; Habana
tt: Port of Spain
us: El Paso; Eagle Pass; Brownsville; San Diego; Texas; Arizona; California
ca: Ottawa; Toronto; Montreal; Montréal
"""

# Context words for inference (publisher.regions.infer): comparison cues, the words a comparison
# may skip or join, language hints, and the cues of the "Georgia" and person-name rules.
PLAIN, AFTER_A, NEEDS_MORE = 0, 1, 2


def variants(*words: str) -> frozenset[bytes]:
    """Each word as written, folded, capitalised and upper-cased, as bytes tokens."""
    out = set()
    for w in words:
        for v in (w, fold(w)):
            out |= {v.encode(), v.capitalize().encode(), v.upper().encode()}
    return frozenset(out)


# Comparison cues: folded first word -> (folded following words, condition).
CUES: dict[bytes, list[tuple[tuple[bytes, ...], int]]] = {
    b"than": [((), PLAIN)],
    b"unlike": [((), PLAIN)],
    b"compared": [((b"to",), PLAIN), ((b"with",), PLAIN)],
    b"comparison": [((b"to",), PLAIN), ((b"with",), PLAIN)],
    b"contrast": [((b"to",), PLAIN), ((b"with",), PLAIN)],
    b"opposed": [((b"to",), PLAIN)],
    b"comparacion": [((b"con",), PLAIN)],
    b"contraste": [((b"con",), PLAIN)],
    b"diferencia": [((b"de",), AFTER_A)],
    b"que": [((), NEEDS_MORE)],
    **{w: [((b"con",), PLAIN)] for w in (b"comparado", b"comparada", b"comparados", b"comparadas")},
}
CUE_TOKENS = variants(*(w.decode() for w in CUES if w != b"que"), "comparación")
QUE = variants("que")
MORE_WORDS = ("más", "menos", "mayor", "menor", "mayores", "menores", "mejor", "peor")
MORE = variants(*MORE_WORDS)
MORE_FOLDED = frozenset(fold(w).encode() for w in MORE_WORDS)
FILLER = frozenset(
    b"the those that in from of to with at for by on a an nationals migrants citizens people "
    b"arrivals figures levels los las el la lo en de del con al desde para por aquellos aquellas "
    b"migrantes nacionales personas cifras niveles".split()
)
JOINERS = frozenset(b"and or the y e o u el la los las".split())
ES_WORDS = variants(
    "de", "la", "el", "los", "las", "y", "en", "del", "para", "con", "por", "que", "una"
)
EN_WORDS = variants("the", "of", "and", "in", "to", "for", "with", "from", "on", "a", "is")
# "Georgia" is the US state when these stand within six tokens of it.
US_EXACT = frozenset((b"US", b"USA", b"U", b"EEUU", b"EE"))
US_WORDS = frozenset(
    b"atlanta savannah augusta macon athens governor gov county senator senate republican "
    b"republicans democrat democrats american americans state gobernador condado estado".split()
)
# A name-like country right after these, or right before "Surname said", is a person.
PERSON_SLUGS = frozenset(("td", "jo", "ge"))
FIRST_NAMES = frozenset(b"michael mr mrs ms dr coach sen rep senor sra".split())
SPEECH = frozenset(b"said says told added explained dijo afirmo explico declaro senalo".split())
NOT_SURNAMES = frozenset(
    b"president prime minister ministry government red national army police basin valley river "
    b"lake crisis response plan office border camp camps authorities officials".split()
)


# Generated names dropped because they are ordinary words or places elsewhere in the region.
EXCLUDE = frozenset(
    ("world", "mundo", "reunion", "granada", "guadalupe", "santa elena", "san bartolome")
)


@dataclass(frozen=True, slots=True)
class Lexicon:
    """First-token index of every phrase; ``keys`` is the set tested against a text's tokens.

    ``index[token]`` is (longest tail, entries longest first).
    """

    index: dict[bytes, tuple[int, tuple[Entry, ...]]]
    keys: frozenset[bytes]


def phrase_tokens(phrase: str) -> list[str]:
    """The phrase cut exactly as ``tokens`` cuts text, as str."""
    return _WORDS.findall(unicodedata.normalize("NFC", phrase))


def _hand_phrases() -> Iterator[tuple[str, str, int]]:
    """(phrase, slug, kind) for every spelling the HAND table expands to."""
    for line in HAND.strip().splitlines():
        slug, _, rest = line.partition(":")
        for raw in rest.split(";"):
            item, kind = raw.strip(), REGION
            if slug.strip() == "-":
                kind = BLOCK
            elif item.startswith("^"):
                item, kind = item[1:], ES_ONLY
            elif item.startswith("!"):
                item, kind = item[1:], NOT_SHOUTED
            if item.endswith("+"):
                forms = [item[:-1], item[:-1] + "s"]
            elif item.endswith("~"):
                forms = es_forms(item[:-1])
            else:
                forms = [item]
            for form in forms:
                yield form, slug.strip(), kind


def _first_keys(first: str) -> set[str]:
    """The spellings of a phrase's first token that the index accepts (the case rules)."""
    if len(first) == 1 or (first.isupper() and len(first) > 1):
        return {first}  # acronyms ("US", "U.S.") match exactly
    plain = unicodedata.normalize("NFKD", first).encode("ascii", "ignore").decode()
    out = {first, plain, first.upper(), plain.upper()}
    if first[0].islower():
        out |= {first.capitalize(), plain.capitalize()}
    return out


@functools.cache
def build(tree: RegionTree) -> Lexicon:
    """Compile the tree's names, generated aliases and the hand table (once per tree)."""
    generated: dict[tuple[str, ...], dict[str, set[str]]] = {}
    aliases = {r["slug"]: r.get("aliases", []) for r in load_document()["regions"]}
    clean = re.compile(r"\s*\([^)]*\)")
    for region in tree:
        names = [region.name_en, region.name_es, *aliases.get(region.slug, [])]
        for name in names:
            toks = phrase_tokens(clean.sub("", name))
            key = tuple(fold(t) for t in toks)
            if toks and " ".join(key) not in EXCLUDE:
                generated.setdefault(key, {}).setdefault(region.slug, set()).add(toks[0])
    phrases: dict[tuple[str, ...], tuple[str, int, set[str]]] = {}
    for key, by_slug in generated.items():
        if len(by_slug) == 1:  # a name shared by two regions says nothing
            ((slug, firsts),) = by_slug.items()
            phrases[key] = (slug, REGION, firsts)
    hand: dict[tuple[str, ...], tuple[str, int, set[str]]] = {}
    for form, slug, kind in _hand_phrases():
        if slug != "-" and slug not in tree:
            continue
        toks = phrase_tokens(form)
        key = tuple(fold(t) for t in toks)
        firsts = hand[key][2] if key in hand else set()
        for seen in generated.get(key, {}).values():  # keep "Côte" when "Cote" is added
            firsts |= seen
        hand[key] = (slug, kind, firsts | {toks[0]})
    phrases.update(hand)
    index: dict[bytes, list[Entry]] = {}
    for key, (slug, kind, firsts) in sorted(phrases.items()):
        tail = tuple(t.encode() for t in key[1:])
        spellings: set[str] = set()
        for f in firsts:
            spellings |= _first_keys(f)
        for first in sorted(spellings):
            index.setdefault(first.encode(), []).append((tail, len(tail), slug, kind))
    compiled = {
        k: (max(e[1] for e in v), tuple(sorted(v, key=lambda e: -e[1]))) for k, v in index.items()
    }
    return Lexicon(index=compiled, keys=frozenset(compiled))
