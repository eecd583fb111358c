from __future__ import annotations

from pathlib import Path

import pytest

from rag import documents
from rag.errors import CorpusError
from rag.types import BODY, COMMENT

from .conftest import SEEDS

CHROME = [
    "This site is intended for health professionals only",
    "Report this comment",
    "Unsuitable or offensive",
    "Rate this article",
    "Click to rate",
    "stars out of 5",
    "80x101px",
    "Read the latest issue online",
    "Related images",
    "Have your say",
    "Downloads",
    "Cite this as",
    "At the heart of general practice since 1960",
]

EXPECTED = {
    "000_78fc25cc31a623ad.txt": ("GP leader: ‘All practices will be part of polysystems’", "Gareth Iacobucci", None),
    "001_52db669886983bda.txt": ("GPs risk being devoured by hospital trusts", None, None),
    "002_241d7df232c0b7ae.txt": ("Polysystems go national in huge work shift to GPs", "Ian Quinn", None),
    "003_3c2afcb771263284.txt": (
        "Working in bigger groups of practices must not sacrifice core values, GP leader warns",
        "Gareth Iacobucci",
        "2017-05-04",
    ),
    "004_a66a46ff990b0307.txt": (None, None, None),
}


def kept_text(doc: documents.Document, kind: str | None = None) -> str:
    return "\n".join(doc.text[s.start : s.end] for s in doc.sections if kind is None or s.kind == kind)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_seed_metadata(name: str) -> None:
    doc = documents.load(SEEDS / name)
    assert doc.source == f"seeds/{name}"
    assert (doc.title, doc.author, doc.date) == EXPECTED[name]
    assert doc.display_title


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_seed_boilerplate_dropped_and_offsets_exact(name: str) -> None:
    doc = documents.load(SEEDS / name)
    raw = (SEEDS / name).read_text(encoding="utf-8")
    assert doc.text == raw
    text = kept_text(doc)
    for chrome in CHROME:
        assert chrome not in text, chrome
    for s in doc.sections:
        assert 0 <= s.start < s.end <= len(raw)
        assert raw[s.start : s.end] == raw[s.start : s.end].strip()
    # sections are ordered and never overlap
    assert all(a.end <= b.start for a, b in zip(doc.sections, doc.sections[1:], strict=False))


def test_seed_body_keeps_the_article_and_drops_captions() -> None:
    doc = documents.load(SEEDS / "002_241d7df232c0b7ae.txt")
    body = kept_text(doc, BODY)
    assert body.startswith("Polysystems go national in huge work shift to GPs")
    assert "It's a big chance for GPs.'" in body
    assert "often centring around polyclinics" not in body  # the trailing picture caption


def test_comments_are_labelled_sections() -> None:
    doc = documents.load(SEEDS / "001_52db669886983bda.txt")
    comments = [s for s in doc.sections if s.kind == COMMENT]
    assert len(comments) == 4
    assert all(s.label and s.label.startswith("Reader's comment") for s in comments)
    assert any(s.label == "Reader's comment by Vinci Ho" for s in comments)
    assert "Readers' comments" not in kept_text(doc)
    article = kept_text(doc, BODY)
    assert "Dr Michelle Drage is chief executive of Londonwide LMCs." in article
    assert "Guardians of general practice" not in article


def test_rules_hold_for_another_news_page() -> None:
    page = "\n\n".join(
        [
            "Skip to main content",
            "This website is intended for UK residents only",
            "Council approves new cycle lanes",
            "By Jane Smith",
            "Published: 12 March 2024",
            "The city council voted on Tuesday to build twelve kilometres of protected cycle lanes.",
            "Advertisement",
            "Work will begin in the spring and is expected to take two years to complete.",
            "Share this article",
            "Subscribe to our newsletter for free updates",
            "3 comments",
            "• Tom Baker",
            "About time too, the roads are dangerous.",
            "Report this comment",
        ]
    )
    doc = documents.parse("page.txt", page)
    assert (doc.title, doc.author, doc.date) == ("Council approves new cycle lanes", "Jane Smith", "2024-03-12")
    body, comments = kept_text(doc, BODY), kept_text(doc, COMMENT)
    assert "twelve kilometres" in body and "two years" in body
    for chrome in ("Advertisement", "Share this", "Subscribe", "Skip to", "intended for", "Report this"):
        assert chrome not in body + comments
    assert comments == "About time too, the roads are dangerous."
    assert [s.label for s in doc.sections if s.kind == COMMENT] == ["Reader's comment by Tom Baker"]
    # an advert between paragraphs splits the article into two sections, so no chunk spans it
    assert len([s for s in doc.sections if s.kind == BODY]) == 2


def test_masthead_above_the_headline_goes_and_the_standfirst_stays() -> None:
    page = "\n\n".join(
        [
            "The Wessex Courier",
            "Serving Dorset and Somerset since 1887",
            "Today's paper\nSubscribe for £1 a week",
            "Environment",
            "River Frome named cleanest in the county",
            "Tests by volunteers found phosphate levels had halved since the sewage works was upgraded",
            "The River Frome has been named the cleanest river in Dorset after a year of monthly tests.",
            "Volunteers from twelve villages collected more than 600 samples between March and February.",
        ]
    )
    doc = documents.parse("courier.txt", page)
    assert doc.title == "River Frome named cleanest in the county"
    text = kept_text(doc)
    for furniture in ("Wessex Courier", "since 1887", "Subscribe", "Environment"):
        assert furniture not in text, furniture
    assert "phosphate levels had halved" in text, "the standfirst is the article's"
    assert "600 samples" in text


def test_one_line_paragraphs_of_an_article_are_never_taken_for_chrome() -> None:
    lines = [
        "Serving the town since 1890",
        "Cite this as proof that the scheme works.",
        "Copyright law changed in 2019.",
        "Register now.",
        "Sign in to vote.",
    ]
    paragraphs = [
        "Tidebury bakery closes after 130 years",
        "By Ann Cole",
        "The Tidebury bakery will close on Friday after 130 years of trading on the High Street.",
        *lines,
        "The owners said rising energy prices had made the ovens too costly to run.",
        "© 2024 Tidebury Gazette Ltd",
        "Share this article",
    ]
    doc = documents.parse("bakery.txt", "\n\n".join(paragraphs))
    text = kept_text(doc)
    for line in lines:
        assert line in text, line
    assert "© 2024" not in text and "Share this" not in text
    assert (doc.title, doc.author) == ("Tidebury bakery closes after 130 years", "Ann Cole")


def test_plain_text_without_prose_is_kept() -> None:
    doc = documents.parse("note.txt", "shopping list\n\nmilk and eggs\n")
    assert kept_text(doc)


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "empty"), (b"   \n\n", "empty"), (b"\x00\x01binary\x00", "binary"), (b"caf\xe9 au lait", "not UTF-8")],
)
def test_unreadable_files_are_refused_with_their_name(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(CorpusError, match=message) as info:
        documents.load(path)
    assert "bad.txt" in str(info.value)


def test_too_large_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_text("word " * 1000, encoding="utf-8")
    with pytest.raises(CorpusError, match="limit"):
        documents.load(path, max_bytes=100)


def test_display_source_is_repo_relative_or_absolute(tmp_path: Path) -> None:
    assert documents.display_source(SEEDS / "000_78fc25cc31a623ad.txt") == "seeds/000_78fc25cc31a623ad.txt"
    outside = tmp_path / "x.txt"
    assert documents.display_source(outside) == str(outside.resolve())
    assert Path(documents.display_source(outside)).is_absolute()


def test_a_labelled_line_after_the_last_paragraph_is_kept_and_sign_offs_are_not() -> None:
    minutes = "\n\n".join(
        [
            "Harbour board meeting",
            "The board discussed the state of the north pier after the January storms and agreed to apply.",
            "Next meeting: 9 April 2024",
            "Contact: Ana Ruiz, harbour office",
            "Share: Twitter, Facebook",
            "Tags: harbour, storms",
            "Photo: Ewan Flett",
            "Downloads",
            "Gareth Iacobucci The BMJ",
            "Cite this as BMJ Careers ; doi:",
        ]
    )
    text = kept_text(documents.parse("minutes.txt", minutes))
    assert "Next meeting: 9 April 2024" in text
    assert "Contact: Ana Ruiz, harbour office" in text
    for furniture in ("Share:", "Tags:", "Photo:", "Downloads", "The BMJ", "Cite this"):
        assert furniture not in text, furniture


@pytest.mark.parametrize(
    ("field", "heading"),
    [
        ("Present: Ana Ruiz (chair), Ewan Flett, Rhona Tait", True),
        ("Apologies: Rhona Tait", True),
        ("From: Ana Ruiz", True),
        ("Sefton: cuts to hospital activity and primary care", False),  # a headline with a colon stays one
    ],
)
def test_a_records_own_field_is_no_headline(field: str, heading: bool) -> None:
    """Under minutes' heading, "Present: Ana Ruiz (chair), Ewan Flett, Rhona Tait" was taken for the title, the
    headline-length line nearest the text, and the heading above it was dropped as page furniture."""
    minutes = "\n\n".join(
        [
            "Harbour board meeting, 12 March 2024",
            field,
            "The board discussed the state of the north pier after the January storms and agreed to apply for help.",
        ]
    )
    doc = documents.parse("minutes.txt", minutes)
    assert doc.title == ("Harbour board meeting, 12 March 2024" if heading else field)
    assert (field in kept_text(doc)) and (("Harbour board meeting" in kept_text(doc)) is heading)


def test_a_list_that_ends_a_page_keeps_its_short_items_and_a_box_of_links_goes() -> None:
    """Blocks after a web page's last paragraph of prose are its furniture (captions, sign-offs, boxes of
    links), but a list the article ends with runs on past it: "• The Go API is undocumented." is five words,
    too few to count as prose alone, and was dropped with everything after it."""
    items = [
        "• Tidal streams.",
        "• There is no support for river estuaries in any version.",
        "• The Go API is undocumented.",
    ]
    page = "\n\n".join(["Missing features", "The library is missing a few features, listed here.", *items])
    doc = documents.parse("features.html", page)
    assert kept_text(doc, BODY).endswith("• The Go API is undocumented.")
    related = ["Related", "• Bus fares to rise in April", "• Queen Street to close for repairs"]
    doc = documents.parse("features.html", "\n\n".join([page, *related]))
    assert kept_text(doc, BODY).endswith("• The Go API is undocumented.")
