"""Turn a follow-up ("where does he work?") into a question that stands on its own.

The default is heuristic coreference: a personal pronoun is replaced by the person the
last turn was about, and a question that leans on earlier context ("what about it?",
"and in London?") carries the previous question's key terms along.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .direct import asks_definition
from .errors import HistoryError
from .names import CAP, HONORIFICS, given_names, people
from .types import LEAD_SEP

History = Sequence[tuple[str, str]]

PERSON_PRONOUNS = {"he": "", "him": "", "his": "'s", "she": "", "her": "", "hers": "'s", "himself": "", "herself": ""}
CONTEXT_PRONOUNS = {"it", "its", "they", "them", "their", "theirs", "this", "these", "those", "there"}
TRAILING_THAT_RE = re.compile(r"\bthat\s*[?.!]*\s*$", re.I)
# "that" alone is usually a conjunction ("said that…"); before a word for a text it points back
THAT_TEXT_RE = re.compile(
    r"\bthat\s+(?:article|piece|story|report|item|post|column|document|paper|page|interview|letter|survey|study)\b",
    re.I,
)
# a question about a person named only by a pronoun ("Where does he work?"), not one whose answer the
# pronoun stands for ("Who announced she would step down?")
UNRESOLVED_RE = re.compile(
    r"^\W*(?:(?:what|who|whom|whose|which|when|where|why|how)\s+"
    r"(?:does|did|do|is|was|are|were|has|had|can|could|will|would|should)\s+)?(he|she|his|her|him)\b",
    re.I,
)
# a question that asks for a thing by its kind ("Which organisation represents GPs?"), not about one
# ("What is a polysystem?"): its answer is the thing a following "it" means
THING_ASKED_RE = re.compile(
    r"^\W*(?:(?:which|what)\s+(?!(?:is|are|was|were|does|did|do|has|had|have|can|could|will|would|should|"
    r"might|may|must|happens|happened|about)\b)[a-z]|who\b)",
    re.I,
)
THING_PRONOUNS = {"it", "its", "itself", "they", "them", "their", "theirs", "themselves"}
SINGULAR_PRONOUNS = {"it", "its", "itself"}
# an extractive answer leads with its short answer: "Londonwide Local Medical Committees — A document by …"
SHORT_ANSWER_RE = re.compile(rf"^(.{{1,80}}?){re.escape(LEAD_SEP)}")
ELLIPTIC_RE = re.compile(r"^\s*(?:and|but|what about|how about|and what about|what else|why|how come|so)\b", re.I)
FOLLOW_ON_RE = re.compile(r"\b(?:next|else|more|another|other|also|then|after that|again)\b", re.I)
_WORD_RE = re.compile(r"[\w'’\-]+")
_STOP = {
    "what",
    "who",
    "whom",
    "whose",
    "which",
    "when",
    "where",
    "why",
    "how",
    "is",
    "are",
    "was",
    "were",
    "do",
    "does",
    "did",
    "the",
    "a",
    "an",
    "of",
    "in",
    "on",
    "to",
    "for",
    "and",
    "or",
    "by",
    "with",
    "about",
    "as",
    "at",
    "be",
    "been",
    "has",
    "have",
    "had",
    "can",
    "could",
    "would",
    "should",
    "will",
    "say",
    "said",
    "says",
    "tell",
    "me",
    "you",
    "that",
    "this",
    "it",
    "its",
    "they",
    "he",
    "she",
    "his",
    "her",
    "their",
    "there",
    "from",
    "according",
}


MAX_TURNS = 50  # follow-ups lean on the last few turns; older ones are not read
MAX_TURN_CHARS = 100_000


@dataclass(frozen=True)
class Rewrite:
    question: str
    standalone: str
    used_history: bool
    exclude: tuple[str, ...] = ()
    unresolved: str | None = None  # the pronoun that names no one: the chat has no earlier turn, or ...
    named: tuple[str, ...] = ()  # ... the people it names are all of the other gender


def validate(history: object) -> list[tuple[str, str]]:
    """History is a list of (question, answer) string pairs, oldest first, or of chat messages as
    Gradio and OpenAI-style clients keep them (``{"role": "user", "content": ...}``), which is what a
    caller holding a chat already has."""
    if history is None:
        return []
    if isinstance(history, (str, bytes)) or not isinstance(history, Sequence):
        raise HistoryError(
            f"history must be a list of (question, answer) pairs or of chat messages, got {type(history).__name__}; "
            'e.g. history=[("Who chairs it?", "Dr Dixon chairs it.")]'
        )
    if history and all(isinstance(turn, Mapping) for turn in history):
        history = _paired(history)
    out = []
    for i, turn in enumerate(history):
        if (
            not isinstance(turn, Sequence)
            or isinstance(turn, (str, bytes))
            or len(turn) != 2
            or not all(isinstance(x, str) for x in turn)
        ):
            raise HistoryError(
                f"history[{i}] must be a (question, answer) pair of strings, got {turn!r:.80}; "
                "pass each turn as a 2-tuple"
            )
        if max(len(turn[0]), len(turn[1])) > MAX_TURN_CHARS:
            raise HistoryError(
                f"history[{i}] holds {max(len(turn[0]), len(turn[1])):,} characters, over the {MAX_TURN_CHARS:,} "
                "limit for one turn; pass the questions and answers as they were shown"
            )
        out.append((turn[0], turn[1]))
    return out[-MAX_TURNS:]


def _paired(messages: Sequence[Mapping]) -> list[tuple[str, str]]:
    """Chat messages as (question, answer) pairs: each assistant message answers the user messages
    before it (joined); system messages and non-text blocks (images, files) say nothing to resolve a
    follow-up against, and a last question with no answer yet is not part of the history."""
    pairs, asked = [], []
    for i, message in enumerate(messages):
        role, text = message.get("role"), _text(message.get("content"))
        if role not in ("user", "assistant", "system") or text is None:
            raise HistoryError(
                f"history[{i}] is not a chat message: {dict(message)!r:.80}; each needs a role (user, assistant "
                'or system) and a content string or list of {"type": "text", "text": ...} blocks'
            )
        if role == "user":
            asked.append(text)
        elif role == "assistant":
            if not asked:
                raise HistoryError(f"history[{i}] is an assistant message that answers no user message before it")
            pairs.append(("\n".join(t for t in asked if t), text))
            asked = []
    return pairs


def _text(content: object) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, Mapping):  # one block on its own (a file, an image, a text)
        content = [content]
    if isinstance(content, Sequence) and not isinstance(content, bytes):
        blocks = [b for b in content if isinstance(b, Mapping)]
        if len(blocks) == len(content):
            return "\n".join(b["text"] for b in blocks if b.get("type") == "text" and isinstance(b.get("text"), str))
    return None


def key_terms(question: str) -> list[str]:
    """The words that say what a question was about. The word after "how" ("how many", "how long") is part
    of asking, not of the subject: carried into "Who leads it?", "many" only makes the sentence that names
    the leader look like a worse match."""
    words = _WORD_RE.findall(question)
    return [
        w
        for i, w in enumerate(words)
        if w.lower() not in _STOP and len(w) > 1 and not (i and words[i - 1].lower() == "how")
    ]


def _words(question: str) -> list[str]:
    return [w.lower() for w in _WORD_RE.findall(question)]


def _replace_person(question: str, name: str) -> str:
    def sub(match: re.Match[str]) -> str:
        word = match.group(0)
        suffix = PERSON_PRONOUNS[word.lower()]
        if (
            word.lower() == "her"
            and re.match(r"\s+[a-z]+\b", question[match.end() :])
            and not re.match(
                r"\s+(?:to|about|for|with|at|in|on|from|by|say|said|is|was|and|or)\b", question[match.end() :]
            )
        ):
            suffix = "'s"
        return name + suffix

    return re.sub(r"\b(?:" + "|".join(PERSON_PRONOUNS) + r")\b", sub, question, flags=re.I)


_MALE, _FEMALE = {"he", "him", "his", "himself"}, {"she", "her", "hers", "herself"}


def _gender_asked(words: set[str]) -> str | None:
    male, female = bool(words & _MALE), bool(words & _FEMALE)
    return "male" if male and not female else "female" if female and not male else None


def _name_words(name: str) -> list[str]:
    return re.sub(rf"^(?:{HONORIFICS}\.?\s+)+", "", name).split()


def _agreeing(words: set[str], names: Sequence[str]) -> str | None:
    """The first person whose given name agrees with the pronoun ("she" after "Dr Michael Dixon introduced
    Dr Michelle Drage" is Dr Drage); ``None`` when the pronoun or the names tell no gender."""
    wanted = _gender_asked(words)
    if wanted is None:
        return None
    for name in names:
        if given_names().get_gender(_name_words(name)[0]).removeprefix("mostly_") == wanted:
            return name
    return None


def _disagreeing(words: set[str], names: Sequence[str]) -> bool:
    """Whether the pronoun tells a gender and every name's given name surely tells the other: "he" after
    a chat that named only Dr Michelle Drage is no one in it."""
    wanted = _gender_asked(words)
    if wanted is None or not names:
        return False
    other = "female" if wanted == "male" else "male"
    bare = [_name_words(n) for n in names]
    # "Dr Jones" has no given name to tell by
    return all(len(b) > 1 and given_names().get_gender(b[0]) == other for b in bare)


def answered_thing(question: str, answer: str) -> str | None:
    """The named thing an answer gave, when its question asked for one: after "Which organisation
    represents GPs?" answered "Londonwide Local Medical Committees — …", "who leads it?" asks about the
    committees, not about representing GPs. A person, a number or a phrase in lower case is no such thing
    ("it" after "Who wrote the piece?" is still the piece)."""
    lead = SHORT_ANSWER_RE.match(answer)
    if not THING_ASKED_RE.match(question) or lead is None:
        return None
    thing = lead.group(1).strip()
    if not thing[:1].isupper() or len(thing.split()) > 8 or thing in people(thing):
        return None
    return thing


_COUNTS = {"two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "many", "several", "other"}


def _still_about(standalone: str) -> bool:
    """Whether a rewritten question pointed back at a thing ("How much faster is it…? (tiktoken)"): a next
    "it" means that thing again, not everything the question asked ("How do I install it?" is about
    tiktoken, not about being faster than other tokenisers)."""
    own, context = carried(standalone)
    return bool(context) and bool(set(_words(own)) & THING_PRONOUNS)


def _kind(question: str) -> str | None:
    """The kind "which/what …?" asks for: its first lower-case word ("Which NHS trusts…?" → "trusts"), or an
    acronym plural ("Which PCTs…?"); capitalised words name the kind, numbers count it."""
    if not THING_ASKED_RE.match(question) or not re.match(r"^\W*(?:which|what)\b", question, re.I):
        return None
    for word in re.findall(r"[\w&'-]+", question)[1:4]:
        if re.fullmatch(r"[A-Z][A-Z&]+s", word):  # "PCTs"
            return word
        if word.isdigit() or word.lower() in _COUNTS:  # "Which two trusts…?"
            continue
        if not word[:1].isupper():
            return word
    return None


def _asks_plural(question: str) -> bool:
    """Whether "which/what …?" asks for things of a plural kind ("Which PCTs received the letter?", "Which
    NHS trusts…?"): a follow-up's "it" then means what that question was about (the letter), not the
    things answered."""
    kind = _kind(question)
    if kind is None:
        return False
    return bool(re.fullmatch(r"[A-Z][A-Z&]+s", kind)) or (
        len(kind) > 2 and kind.endswith("s") and not kind.endswith(("ss", "us", "is", "ics"))
    )


def rewrite_one(question: str, previous: Sequence[tuple[str, str]]) -> Rewrite:
    """Rewrite ``question`` given earlier turns whose questions are already standalone."""
    if not previous:  # only an empty chat surely names no one: "Drage" alone is not found as a person
        pronoun = m.group(1) if (m := UNRESOLVED_RE.search(question)) else None
        return Rewrite(question, question, False, unresolved=pronoun)
    last_q, last_a = previous[-1]
    words = set(_words(question))
    standalone, used = question, False
    if words & set(PERSON_PRONOUNS):
        earlier = [p for q, a in reversed(previous) for p in people(q) + people(a)]
        who = people(last_q) or people(last_a) or earlier
        named = list(dict.fromkeys([*who, *earlier]))
        subject = UNRESOLVED_RE.search(question)
        if subject and _disagreeing(words, named):
            return Rewrite(question, question, False, unresolved=subject.group(1), named=tuple(named))
        if who:
            standalone, used = _replace_person(question, _agreeing(words, named) or who[0]), True
    needs_context = (
        bool(words & CONTEXT_PRONOUNS)
        or bool(TRAILING_THAT_RE.search(question))
        or bool(THAT_TEXT_RE.search(question))
        or bool(ELLIPTIC_RE.match(question))
        or (len(words) <= 3 and not asks_definition(question))  # "What is Cargo?" is whole: it names its thing
    )
    pronouns = words & THING_PRONOUNS
    plural = pronouns and pronouns <= SINGULAR_PRONOUNS and _asks_plural(last_q)  # "it" is not the PCTs asked for
    thing = answered_thing(last_q, last_a) if pronouns and not plural else None
    if needs_context and thing:
        if thing.lower() not in standalone.lower():
            standalone, used = carrying(standalone, thing), True
    elif needs_context and pronouns and not plural and _still_about(last_q):
        standalone, used = carrying(standalone, carried(last_q)[1]), True  # "it" twice: the same thing
    elif needs_context:
        asked = about(last_q) or last_q  # after "Tell me about polysystems", "Tell me more" is about polysystems
        missing = [t for t in key_terms(asked) if t.lower() not in {w.lower() for w in _WORD_RE.findall(standalone)}]
        if ELLIPTIC_RE.match(question) and _own_names(question):
            missing = [t for t in missing if not _name_word(t)]  # "What about Derbyshire?" asks not of Suffolk
        elif FOLLOW_ON_RE.search(question) and _own_terms(question) and not words & CONTEXT_PRONOUNS:
            missing = [t for t in missing if t[:1].isupper() and not _NOT_SUBJECT_RE.fullmatch(t)]
        elif _own_terms(question):  # "What was it used for?" asks its own thing of the engine, not who invented it
            missing = [t for t in missing if not _PAST_VERB_RE.fullmatch(t)]
        if pronouns and pronouns <= SINGULAR_PRONOUNS and (counted := COUNTED_RE.search(asked)):
            missing = [t for t in missing if t.lower() != counted.group(1).lower()]  # "it" is not the GPs counted
        given = answered_thing(last_q, last_a) if not pronouns else None  # "By how much?" after "Which trust…?"
        if given and given.lower() not in standalone.lower():
            kind = (_kind(last_q) or "").lower()  # "trust": the answer is one
            missing = [given, *(t for t in missing if t.lower() != kind)]
        if missing:
            standalone, used = carrying(standalone, " ".join(missing)), True
    exclude = tuple(a for _, a in previous) if FOLLOW_ON_RE.search(question) else ()  # nothing said before
    return Rewrite(question, standalone, used, exclude)


def _name_word(word: str) -> bool:
    """A capitalised word that is not an acronym ("Suffolk", "McDonald", not "NHS" or "GPs"): part of a name."""
    return bool(re.fullmatch(CAP, word))


def _own_names(question: str) -> list[str]:
    """The name words a follow-up brings of its own ("Derbyshire" in "What about Derbyshire?"): it puts
    them in place of the names the question before it asked about."""
    words = _WORD_RE.findall(question)
    return [w for w in words[1:] if _name_word(w) and w.lower() not in _STOP and not _NOT_SUBJECT_RE.fullmatch(w)]


# a lower-case word in -ed: the earlier question's verb ("invented"), not what it was about
_PAST_VERB_RE = re.compile(r"[a-z]{2,}[^e\W]ed")
# what "how many…?" counted: after "How many GPs does Londonwide LMCs represent?", "Who leads it?" asks of the
# committees; carried along, "GPs" drew the sentence "… which represents GPs, which it has shared with HSJ"
COUNTED_RE = re.compile(r"\bhow\s+many\s+([\w'’\-]+)", re.I)
_MORE_WORDS = {"anything", "something", "thing", "things", "others", "further", "point", "points"}


def _own_terms(question: str) -> list[str]:
    """What a follow-up asking for more says of its own: "What else does the document propose?" asks what
    the earlier question's subject ("the Londonwide document") says besides, not again why practices need
    to work together, so only the earlier subject's names are carried; "Anything else?" says nothing of
    its own and carries all."""
    return [
        t
        for t in key_terms(question)
        if not FOLLOW_ON_RE.fullmatch(t) and t.lower() not in _MORE_WORDS and not _NOT_SUBJECT_RE.fullmatch(t)
    ]


# capitalised in a follow-up without naming what it asks about instead: "And Then?", "And in January?"
_NOT_SUBJECT_RE = re.compile(
    r"(?:what|why|how|when|where|who|which|whom|whose|then|else|also|too|now|next|january|february|march|"
    r"april|may|june|july|august|september|october|november|december|monday|tuesday|wednesday|thursday|"
    r"friday|saturday|sunday)",
    re.I,
)


_WH = r"(?:what|who|whom|whose|which|when|where|why|how)"
_AUX = r"(?:is|are|was|were|do|does|did|can|could|will|would|should|shall|has|have|had|may|might|must)"

ASKING_RE = re.compile(rf"^\W*(?:{_WH}|{_AUX})\b", re.IGNORECASE)


def punctuated(question: str) -> str:
    """A question typed without its question mark, or with a full stop, given one: the embedding model,
    the selector and the reader all learnt from questions that end in "?", and without it "What comedian
    is also a university graduate" retrieves other passages than the same words asked with it (the
    held-out view's questions with their question marks cut: accuracy 0.740 → 0.725; with full stops
    instead: 0.747 → 0.740)."""
    last = question[-1:]
    if not ASKING_RE.match(question) or not last:
        return question
    if last.isalnum() or last in "\"'”’)":
        return question + "?"
    if last == "." and not question.endswith(".."):  # "Who chairs the NHS Alliance." asks all the same
        return question[:-1] + "?"
    return question


TOPIC_ASKED = (
    re.compile(
        r"^\W*(?:(?:can|could|would|will) you\s+)?(?:please\s+)?(?:tell me|talk|say something|tell us)"
        r"(?:\s+(?:a (?:bit|little)\s+)?more)?\s+(?:about|on|regarding)\s+(?P<topic>.+?)\W*$",
        re.IGNORECASE | re.DOTALL,
    ),
    re.compile(
        r"^\W*(?:please\s+)?(?:(?:and\s+)?(?:what|how) about|describe|summari[sz]e|outline|explain|"
        r"give me (?:an? )?(?:overview|summary|"
        r"background|information|info)(?: (?:of|on|about))?|(?:an? )?(?:overview|summary|background|information|"
        r"info) (?:of|on|about)|more (?:about|on))\s+(?P<topic>.+?)\W*$",
        re.IGNORECASE | re.DOTALL,
    ),
)
MAX_BARE_TOPIC_WORDS = 4


@functools.lru_cache(maxsize=256)
def topic_request(text: str) -> str | None:
    """What a request that asks no question is about: "Tell me about polysystems", "Describe the NHS
    Alliance", or a bare name or term typed as into a search box ("Michelle Drage"). Its answer is what
    the documents say about that, not a short answer to a question it does not ask; "Explain why GPs
    object" asks one ("why…"), and so does anything that opens as a question."""
    for pattern in TOPIC_ASKED:
        if m := pattern.match(text):
            topic = m.group("topic").strip()
            return None if re.match(rf"{_WH}\b", topic, re.I) else topic
    words = re.findall(r"[\w&'’.-]+", text)
    if not words or len(words) > MAX_BARE_TOPIC_WORDS or re.search(rf"\b{_WH}\b", text, re.I):
        return None
    if re.match(rf"{_AUX}\b", words[0], re.I):
        return None
    if words[0].lower() in ("and", "but", "or", "so"):  # "And Sefton?" with nothing before it
        words = words[1:]
    return " ".join(words) or None


# what "Tell me more", "Go on" or "Anything else?" say of their own: nothing
_NOTHING_OF_ITS_OWN = frozenset(
    {"tell", "me", "us", "more", "anything", "something", "else", "go", "on", "please", "continue", "and", "so"}
    | {"keep", "going", "further"}
)


def about(text: str) -> str | None:
    """The topic of a request that asks no question ("Tell me about polysystems", "Michelle Drage"), or
    ``None``. A follow-up that carries an earlier turn's words ("Tell me more (Dr Michael Dixon)") is
    about those words, and about its own beside them when it has any ("Tell me about its fares")."""
    own, context = carried(text)
    topic = topic_request(own)
    if topic is None or not context:
        return topic
    if ELLIPTIC_RE.match(own):  # "What about its primary care spending?" asks the earlier question again
        return None
    return context if not set(topic.lower().split()) - _NOTHING_OF_ITS_OWN else f"{topic} {context}"


def carrying(question: str, context: str) -> str:
    """The question with what an earlier turn was about: "Who is hosting it? (Londonwide LMCs conference)"."""
    return f"{question.rstrip()} ({context})"


_CARRIED_RE = re.compile(r" \(([^()]*)\)$")


def carried(standalone: str) -> tuple[str, str]:
    """A rewritten question split into the user's own words and the context ``carrying`` added ("" if none)."""
    m = _CARRIED_RE.search(standalone)
    return (standalone[: m.start()], m.group(1)) if m else (standalone, "")


def rewrite(question: str, history: object) -> Rewrite:
    """Resolve the whole history in order, so a chain of follow-ups keeps its referents."""
    turns = validate(history)
    resolved: list[tuple[str, str]] = []
    for q, a in turns:
        resolved.append((rewrite_one(q, resolved).standalone, a))
    return rewrite_one(question, resolved)
