"""Fuzzing: any question and any uploaded file ends in an answer or a clear error, within its time limit."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag import ask
from rag.config import Config
from rag.errors import RagError
from rag.uploads import ACCEPTED, add_files

from .test_ask import assert_contract

QUESTIONS = st.one_of(
    st.text(max_size=400),
    st.text(alphabet=st.characters(categories=["Cc", "Cf", "Mn", "Zs", "Po"]), max_size=60),
    st.builds(
        lambda a, b: f"{a} Who chairs the NHS Alliance? {b}",
        st.text(max_size=80),
        st.text(alphabet=st.characters(codec="utf-8"), max_size=80),
    ),
    st.integers(min_value=7000, max_value=120_000).map(lambda n: "why " * (n // 4)),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(question=QUESTIONS)
def test_any_question_gets_an_answer_or_a_clear_error(seed_config: Config, question: str) -> None:
    started = time.monotonic()
    try:
        answer = ask(question, config=seed_config)
    except RagError as e:
        assert str(e) and "\n" not in str(e)
    else:
        assert_contract(answer)
    assert time.monotonic() - started < 10


FILES = st.tuples(
    st.sampled_from([*ACCEPTED, ".exe", ""]),
    st.text(max_size=300),  # the name the browser sends
    st.one_of(
        st.binary(max_size=4000),
        st.text(max_size=2000).map(lambda t: t.encode("utf-8")),
        st.sampled_from([b"PK\x03\x04", b"%PDF-1.7\n", b"<html><script>x</script>", b"\xef\xbb\xbf"]).flatmap(
            lambda head: st.binary(max_size=2000).map(lambda tail: head + tail)
        ),
    ),
)


@pytest.mark.slow
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(upload=FILES)
def test_any_uploaded_file_is_added_or_refused_with_a_reason(
    corpus_config: Config, tmp_path: Path, upload: tuple[str, str, bytes]
) -> None:
    suffix, name, data = upload
    path = tmp_path / f"incoming-{time.time_ns()}"
    path.write_bytes(data)
    started = time.monotonic()
    result = add_files(corpus_config, [(path, name + suffix)])
    assert len(result.added) + len(result.rejected) == 1
    for _, why in result.rejected:
        assert why and "Traceback" not in why
    for source in result.added:
        stored = Path(source)
        assert stored.parent.name == "uploads" and len(stored.name) <= 120
    assert time.monotonic() - started < 90
