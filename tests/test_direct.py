"""Questions answered by a sentence's form: a byline, a dateline, an abbreviation's definition."""

from __future__ import annotations

import pytest

from rag.direct import asks_procedure, asks_yes_no, direct_form, is_metadata

DEFINES = "Plans include multispecialty community providers (MCPs) and primary and acute care systems (PACS)."


@pytest.mark.parametrize(
    ("question", "sentence", "answer"),
    [
        ("Who wrote the piece on ferry timetables?", "By Morag Flett", "Morag Flett"),
        ("Who is the author of the report?", "Authors: Ana Lima, Tom Reid ", "Ana Lima, Tom Reid"),
        ("When was the ferry story published?", "Publication date:\u00a0 04 March 2021", "04 March 2021"),
        ("When was it posted?", "Posted on 3 June 2019", "3 June 2019"),
        ("What does PACS stand for?", DEFINES, "primary and acute care systems"),
        ("What are MCPs?", DEFINES, "multispecialty community providers"),
        ("What does MCP mean?", DEFINES, "multispecialty community providers"),
        ("what does pacs stand for", DEFINES, "primary and acute care systems"),  # typed in lower case
        ("What is DNA?", "DNA (deoxyribonucleic acid) carries genes.", "deoxyribonucleic acid"),
        # a name written out in full elsewhere, with no abbreviation beside it
        (
            "What does LMC stand for?",
            "The chief of Londonwide Local Medical Committees spoke.",
            "Local Medical Committees",
        ),
        (
            "What does RCGP stand for?",
            "the Royal College of General Practitioners, she said",
            "Royal College of General Practitioners",
        ),
        ("What does UN mean?", "It went to the United Nations.", "United Nations"),
        ("Which piece was written by Dr Ana Lima?", "Authors: Ana Lima, Tom Reid", "Ana Lima, Tom Reid"),
    ],
)
def test_the_form_gives_the_short_answer(question: str, sentence: str, answer: str) -> None:
    form = direct_form(question, sentence)
    assert form is not None
    assert sentence[form.start : form.end] == answer
    assert form.of_article == question.startswith(("Who", "When", "Which piece"))


@pytest.mark.parametrize(
    ("question", "sentence"),
    [
        ("Who chairs the ferry board?", "By Morag Flett"),  # a byline answers only who wrote it
        ("How long has she worked there?", "Publication date: 04 March 2021"),
        ("When was the ferry story published?", "Publication date: soon"),  # not a date
        ("What does PACS stand for?", "Plans include PACS and MCPs."),  # named, never defined
        ("What does it stand for?", "Plans include information technology (IT)."),  # "it" points back
        ("What does the NHS do?", "The NHS (National Health Service) treats patients."),
        ("What does XYZ stand for?", "Plans include extra care homes (XCH)."),  # letters do not match
        ("Who wrote the piece?", "By the time the ferry left, the storm had passed and the harbour was quiet again."),
        ("What does LMC stand for?", "The Local Medical Committee Conference met."),  # a longer name
        ("What does LMC stand for?", "The local medical committees met."),  # not a name
        ("What does LMC stand for?", "Local, Medical and Committee matters."),  # not one name
        # the question names the writer: another writer's byline does not say which piece is theirs
        ("Which article was written by Michelle Drage?", "Authors: Gareth Iacobucci"),
        ("Which piece was written by Dr Ana Lima?", "By Morag Flett"),
    ],
)
def test_no_form_no_span(question: str, sentence: str) -> None:
    assert direct_form(question, sentence) is None


FERRY = """Island ferry timetable to change in spring

By Morag Flett

Publication date: 12 March 2021

The Northern Ferry Council (NFC) has agreed a new timetable for the island routes, with the first
sailing leaving Kirkwall at 6am from April.

Councillors said the change followed complaints from islanders who commute to the mainland for work.
The council will review the timetable after six months.
"""
BRIDGE = """Bridge repairs to close the harbour road

By Ewan Tait

Publication date: 2 February 2021

Repairs to the harbour bridge will close the road for three weeks, the roads department said.
Buses will divert through the town centre while the work is carried out.
"""


@pytest.mark.parametrize(
    ("question", "short"),
    [
        ("Who wrote the article about the ferry timetable?", "Morag Flett"),
        ("When was the piece on the bridge repairs published?", "2 February 2021"),
        ("What does NFC stand for?", "Northern Ferry Council"),
    ],
)
def test_ask_answers_from_the_form_on_an_unseen_corpus(tmp_path, question: str, short: str) -> None:
    from rag import ask
    from rag.config import load_config

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ferry.txt").write_text(FERRY, encoding="utf-8")
    (docs / "bridge.txt").write_text(BRIDGE, encoding="utf-8")
    config = load_config(env={}, corpus=str(docs), index_dir=str(tmp_path / "index"))
    answer = ask(question, config=config)
    assert not answer.abstained
    assert answer.span is not None and answer.span.quote == short
    assert short in answer.text
    first = answer.citations[0]
    assert first.start <= answer.span.start < answer.span.end <= first.end


@pytest.mark.parametrize(
    ("question", "of_article"),
    [
        ("Who wrote the piece about the lifeboat station?", True),
        ("Which journalist reported the council's vote?", True),
        ("When was the article on dredging published?", True),
        ("Who voted to move the lifeboat station?", False),
        ("What does RNLI stand for?", False),
        ("When will the new station open?", False),
    ],
)
def test_a_question_about_the_piece_itself_is_told_from_one_about_its_contents(question: str, of_article: bool) -> None:
    from rag.direct import asks_of_article

    assert asks_of_article(question) is of_article


@pytest.mark.parametrize(
    ("sentence", "metadata"),
    [
        ("By Morag Flett", True),
        ("  Publication date: 12 March 2021 ", True),
        ("By the time the ferry left, the storm had passed and the harbour was quiet again.", False),
        ("Morag Flett said the ferry was late.", False),
        ("By 9000 BP, Europe was fully forested.", False),
    ],
)
def test_bylines_and_datelines_are_told_from_prose(sentence: str, metadata: bool) -> None:
    assert is_metadata(sentence) == metadata


@pytest.mark.parametrize(
    ("question", "found"),
    [
        (
            "Where does change have to begin, according to the chief executive?",
            ("the chief executive", "Where does change have to begin?"),
        ),
        ("According to Ana Lima, what is driving the new models?", ("Ana Lima", "what is driving the new models?")),
        (
            "What do boats do now, according to Marta Quintela, harbourmaster of Vila Nova?",
            ("Marta Quintela, harbourmaster of Vila Nova", "What do boats do now?"),
        ),
        ("What is according to plan?", None),  # too little is left to be a question of its own
        ("Who said the plan was too slow?", None),
    ],
)
def test_an_according_to_clause_is_told_from_the_question_it_credits(
    question: str, found: tuple[str, str] | None
) -> None:
    from rag.direct import attribution

    assert attribution(question) == found


@pytest.mark.parametrize(
    ("sentence", "span", "short"),
    [
        (
            "Oxygen condenses at 90.20 K (−182.95 °C, −297.31 °F) under pressure.",
            "90.20 K (−182.95 °C",
            "90.20 K (−182.95 °C, −297.31 °F)",
        ),
        (
            "Firms substitute equipment for labor inputs (workers) over time.",
            "labor inputs (work",
            "labor inputs (workers)",
        ),
        (
            "It needs a VideoGuard UK equipped receiver (all of which are dedicated to the Sky service, and cannot "
            "be used to decrypt other services).",
            "VideoGuard UK equipped receiver (all of which are dedicated to the Sky service",
            "VideoGuard UK equipped receiver",
        ),
        ("Register with the council (GPhC is its name", "(GPhC", "GPhC"),
        ("He said “all the noise” was a distraction.", "“all the noise”", "all the noise"),
        ("Costs [see table 2] rose.", "Costs [see", "Costs [see table 2]"),
    ],
)
def test_a_short_answer_closes_the_bracket_it_opens(sentence: str, span: str, short: str) -> None:
    from rag.direct import trimmed

    start = sentence.index(span)
    found = trimmed(sentence, start, start + len(span))
    assert found is not None
    assert sentence[found[0] : found[1]] == short


@pytest.mark.parametrize(
    ("sentence", "given", "rest"),
    [
        (
            "It connects GPs to community services, the third sector, schools, and other agencies that can help, "
            "while keeping the list.",
            "community services",
            "the third sector, schools, and other agencies that can help",
        ),
        (
            "Councils compared plans for sea walls, pumping stations and managed retreat.",
            "sea walls",
            "pumping stations and managed retreat",
        ),
        ("He met Smith, Jones and Brown.", "smith", "Jones and Brown"),
        # no list goes on: a clause, a date, or the whole list already given
        (
            "The meeting, at BMA headquarters in Central London, is aiming to co-ordinate protests.",
            "Central London",
            None,
        ),
        ("It was built in 1953, and it failed in 2020.", "1953", None),
        (
            "It moved cardiology and gynaecology clinics and diagnostic surgery.",
            "cardiology and gynaecology clinics and diagnostic surgery",
            None,
        ),
        ("The fund pays for nurses, which the council welcomed.", "nurses", None),
    ],
)
def test_the_rest_of_a_list_answers_what_else(sentence: str, given: str, rest: str | None) -> None:
    from rag.direct import rest_of_list

    found = rest_of_list(sentence, given)
    assert (sentence[found[0] : found[1]] if found else None) == rest


@pytest.mark.parametrize(
    ("question", "sentence", "answer"),
    [
        ("What is ownership?", "Ownership is a set of rules that govern memory.", "a set of rules that govern memory"),
        (
            "What's a vector?",
            "Vectors allow you to store more than one value.",
            "allow you to store more than one value",
        ),
        (
            "What are threads?",
            "The features that run these parts are called threads.",
            "The features that run these parts",
        ),
        (
            "Who is Tom Coffey?",
            "Dr Tom Coffey is the clinical lead for polysystems.",
            "the clinical lead for polysystems",
        ),
        ("What does copyleft mean?", "“Copyleft” means that copies keep the licence.", "that copies keep the licence"),
        ("What is meant by a Licensor?", '"Licensor" shall mean the copyright owner.', "the copyright owner"),
        ("What is the stack?", "The stack stores values in order: last in, first out.", "stores values in order"),
        ("What is a polysystem?", "A polysystem (a federation of practices) is a GP network.", "a GP network"),
        # the definition stops where the sentence goes on to something else
        (
            "What is a mutex?",
            "Mutex is an abbreviation for mutual exclusion, as in only one at a time.",
            "an abbreviation for mutual exclusion",
        ),
        (
            "What was Quarrynet?",
            "Quarrynet was a data network run by Ofcom, originally built in 1975.",
            "a data network run by Ofcom",
        ),
        (
            "What is Rc?",
            "We use the type Rc<T>, which is an abbreviation for reference counting.",
            "an abbreviation for reference counting",
        ),
        (
            "What are closures?",
            "Rust’s closures are the functions you can save in a variable.",
            "the functions you can save in a variable",
        ),
    ],
)
def test_a_definition_answers_what_a_thing_is(question: str, sentence: str, answer: str) -> None:
    form = direct_form(question, sentence)
    assert form is not None and not form.of_article
    assert sentence[form.start : form.end] == answer


@pytest.mark.parametrize(
    ("question", "sentence"),
    [
        ("Who is Tom Coffey?", "Tom Coffey is expected to speak at the conference."),  # says what he does
        ("What is the heap?", "The heap is not organised."),
        ("What is it?", "It is a tool."),  # a pronoun names nothing to define
        ("What is the vector for?", "The vector is a list."),  # asks its purpose, not what it is
        ("What is ownership?", "Shared ownership is a scheme for buyers."),  # another thing
        ("What is a vector?", "Vector graphics are drawn with lines."),
        ("What is Michelle Drage's salary?", "Michelle Drage is the chief executive."),
    ],
)
def test_no_definition_no_span(question: str, sentence: str) -> None:
    assert direct_form(question, sentence) is None


QUILL = """# Quillmark

Quillmark runs on Linux, macOS and Windows. Quillmark reads Markdown files from a folder you choose.

Quillmark is a command-line tool that turns meeting notes into slides.

Install Quillmark with pip. Quillmark keeps your notes where they are and writes the slides beside them.
Quillmark needs Python 3.10 or newer. Quillmark has no settings file.
"""


@pytest.fixture(scope="module")
def quill_config(tmp_path_factory: pytest.TempPathFactory):
    """A corpus of one README whose every sentence names its subject."""
    from rag.config import load_config

    docs = tmp_path_factory.mktemp("quill")
    (docs / "README.md").write_text(QUILL, encoding="utf-8")
    return load_config(env={}, corpus=str(docs), index_dir=str(tmp_path_factory.mktemp("quill-index")))


def test_a_single_document_is_asked_what_its_subject_is(quill_config) -> None:
    """Every sentence names the subject, so its words carry no weight: only the definition's form does."""
    from rag import ask

    answer = ask("What is Quillmark?", config=quill_config)
    assert not answer.abstained
    assert answer.span is not None and answer.span.quote == "a command-line tool that turns meeting notes into slides"
    assert answer.citations[0].quote.startswith("Quillmark is a command-line tool")


@pytest.mark.parametrize(
    ("question", "procedure"),
    [
        ("How do I install Quillmark?", True),
        ("how can i get help", True),
        ("How to convert notes?", True),
        ("How would one describe the summers in Fresno?", False),  # wants "hot and dry"
        ("How many PCTs responded?", False),
        ("How do GPs keep control?", False),
    ],
)
def test_how_do_i_asks_for_the_steps(question: str, procedure: bool) -> None:
    assert asks_procedure(question) is procedure


def test_the_steps_are_the_whole_sentence(quill_config) -> None:
    """A word of the sentence ("pip") is no answer to "How do I install it?"."""
    from rag import ask

    answer = ask("How do I install Quillmark?", config=quill_config)
    assert not answer.abstained
    assert answer.span is not None and answer.span.quote == "Install Quillmark with pip"
    assert answer.text.startswith("Install Quillmark with pip. [1]")


@pytest.mark.parametrize(
    ("question", "yes_no"),
    [
        ("Is NHS Sefton cutting primary care spending?", True),
        ("Did the BMA hold a rally?", True),
        ("Isn't the clinic closed?", True),
        ("Do I need Python 3.10?", True),
        ("Is the clinic open on Monday or Tuesday?", False),  # a choice: the span names it
        ("Can you tell me who wrote the piece?", False),  # a wh-question put politely
        ("Do you know who chairs the NHS Alliance?", False),
        ("Could you give me a recipe for banana bread?", False),
        ("Who is Clare Gerada?", False),
        ("Whose plan is it?", False),
    ],
)
def test_a_yes_or_no_question_is_told_from_one_a_span_answers(question: str, yes_no: bool) -> None:
    assert asks_yes_no(question) is yes_no


@pytest.mark.parametrize(
    ("question", "short", "restated"),
    [
        (
            "Does BSkyB carry any control over the picture quality of a channel?",
            "BSkyB does not carry any control over the channel's content or carriage issues such as picture quality",
            True,
        ),
        ("Will GP consultations be shortened?", "reducing the length of GP consultations by a third", True),
        ("Is NHS Sefton cutting primary care spending?", "10%", False),
        ("Can patients choose their GP?", "fewer doctors choosing general practice as a career", False),
    ],
)
def test_a_yes_or_no_question_keeps_only_a_short_answer_that_says_what_it_asks(
    question: str, short: str, restated: bool
) -> None:
    from rag.spans import restates

    assert restates(question, short) is restated


@pytest.mark.parametrize(
    ("question", "line", "short", "answer"),
    [
        (
            "Who was present?",
            "Present: Ana Ruiz (chair), Ewan Flett, Rhona Tait",
            "Ana Ruiz",
            "Ana Ruiz (chair), Ewan Flett, Rhona Tait",
        ),
        (
            "Who are the authors?",
            "• Authors: Neil Schemenauer, Matthias Klose",
            "Matthias Klose",
            "Neil Schemenauer, Matthias Klose",
        ),
        # the question asks about one item, not what the label names: the span stays
        ("Who chaired the meeting?", "Present: Ana Ruiz (chair), Ewan Flett, Rhona Tait", "Ana Ruiz", "Ana Ruiz"),
        ("When is the next meeting?", "Next meeting: 9 April 2024", "9 April 2024", "9 April 2024"),  # one item
        (
            "Who spoke?",
            "Speakers: Ana Ruiz, who chairs the harbour board and the ferry committee, Ewan Flett",
            "Ewan Flett",
            "Ewan Flett",
        ),
    ],
)
def test_a_labelled_list_answers_whole_what_its_label_names(question: str, line: str, short: str, answer: str) -> None:
    from rag.spans import whole_field

    start = line.index(short)
    found = whole_field(question, line, (0, len(line)), (start, start + len(short))) or (start, start + len(short))
    assert line[found[0] : found[1]] == answer


def test_a_short_answer_leaves_its_list_items_bullet_out() -> None:
    """ "How do I change the indent width?" is answered by the whole item, not by its bullet."""
    from rag.direct import trimmed

    item = "• New Indent Width: Open a dialog to change indent width."
    found = trimmed(item, 0, len(item))
    assert found is not None and item[found[0] : found[1]] == "New Indent Width: Open a dialog to change indent width"
