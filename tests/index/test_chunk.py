"""Chunking: Chinese-aware sentences, token bounds, overlap (toy tokenizer and the real one)."""

# ruff: noqa: RUF001

from __future__ import annotations

import itertools

import pytest

from index.chunk import RegexTokenizer, chunk_text, chunk_texts, sentence_spans

TOKENS = RegexTokenizer()


def sentences(text: str) -> list[str]:
    return [text[a:b] for a, b in sentence_spans(text)]


def chunks(text: str, max_tokens: int, overlap: int = 0) -> list[str]:
    return [c.text for c in chunk_texts([text], TOKENS, max_tokens, overlap)[0]]


def test_chinese_and_western_sentence_ends() -> None:
    text = "患者胸闷。建议复查！是否住院？先观察；Follow up in 2 weeks. Call us! OK"
    assert sentences(text) == [
        "患者胸闷。",
        "建议复查！",
        "是否住院？",
        "先观察；",
        "Follow up in 2 weeks.",
        "Call us!",
        "OK",
    ]


def test_closing_quotes_stay_with_their_sentence_and_decimals_do_not_split() -> None:
    text = "医生说：“按时服药。”然后离开。Dose 2.5 mg daily.\n第二行"
    assert sentences(text) == ["医生说：“按时服药。”", "然后离开。", "Dose 2.5 mg daily.", "第二行"]


def test_blank_text_gives_no_chunks() -> None:
    assert chunks("", 10) == []
    assert chunks(" \n\t ", 10) == []


def test_sentences_are_packed_up_to_the_bound() -> None:
    text = "一二三。四五六。七八九。"  # four tokens per sentence (three characters and 。)
    assert chunks(text, 8) == ["一二三。四五六。", "七八九。"]
    assert chunks(text, 12) == [text]


def test_every_chunk_respects_the_bound_and_covers_the_text() -> None:
    text = "".join(f"第{i}句话说明病情变化。Sentence {i} is in English. " for i in range(40))
    result = chunk_texts([text], TOKENS, 24, 6)[0]
    assert len(result) > 5
    for chunk in result:
        assert chunk.tokens <= 24
        assert chunk.text == text[chunk.start : chunk.end]
        assert chunk.tokens == len(TOKENS.token_spans([chunk.text])[0])
    assert result[0].start == 0 and result[-1].end == len(text.rstrip())
    for before, after in itertools.pairwise(result):
        assert after.start <= before.end  # contiguous or overlapping, never a gap
        assert after.start > before.start  # always moves forward
    assert [c.index for c in result] == list(range(len(result)))


def test_overlap_repeats_the_last_sentences_of_the_previous_chunk() -> None:
    text = "甲乙。丙丁。戊己。庚辛。"  # three tokens per sentence
    assert chunks(text, 6, overlap=3) == ["甲乙。丙丁。", "丙丁。戊己。", "戊己。庚辛。"]
    assert chunks(text, 6, overlap=0) == ["甲乙。丙丁。", "戊己。庚辛。"]


def test_a_sentence_longer_than_a_chunk_is_cut_into_overlapping_windows() -> None:
    text = " ".join(f"w{i}" for i in range(30))  # 60 tokens: letter run + digit run each
    result = chunk_texts([text], TOKENS, 20, 4)[0]
    assert all(c.tokens <= 20 for c in result)
    assert result[0].text.startswith("w0 ") and result[-1].text.endswith("w29")
    assert result[1].start < result[0].end  # windows overlap


def test_overlap_is_capped_so_chunks_always_advance() -> None:
    text = "一二三。四五六。七八九。"
    assert chunks(text, 4, overlap=100) == ["一二三。", "四五六。", "七八九。"]


def test_max_tokens_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_tokens"):
        chunk_text("abc", [(0, 3)], 0, 0)


def test_real_tokenizer_bounds_mixed_chinese_english(model_embedder) -> None:  # type: ignore[no-untyped-def]
    text = (
        "患者男性，65岁，因反复胸闷气短3月入院。既往高血压病史10年，规律服用氨氯地平。"
        "Echocardiography showed an ejection fraction of 45 percent. "
        "诊断：冠心病，心功能II级；建议行冠脉造影。Discharged on aspirin and atorvastatin!"
    ) * 4
    result = chunk_texts([text], model_embedder, 48, 8)[0]
    assert len(result) > 2
    for chunk in result:
        assert chunk.tokens <= 48
        assert len(model_embedder.token_spans([chunk.text])[0]) <= 48
