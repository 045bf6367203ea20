import numpy as np
import pytest

from curation.dedup import (
    BAD_SHINGLE_SIZE,
    BAD_SIGNATURE_BYTES,
    BAD_THRESHOLD,
    MINHASH_SCHEME,
    NUM_PERM,
    WRONG_NUM_PERM,
    WRONG_SCHEME,
    NearDupIndex,
    exact_key,
    minhash,
    minhash_from_bytes,
    minhash_to_bytes,
    normalise,
    shingles,
)

ANSWER = (
    "To rotate the logs every night, add a logrotate rule for the application directory. "
    "Set the rule to daily, keep fourteen rotations, and compress everything except the most "
    "recent file so that the service can still write to it while it is being rotated. "
    "If the application keeps its file handle open, use copytruncate, or send it a signal "
    "after rotation so it reopens the file. Test the rule with logrotate in debug mode first: "
    "it prints what it would do without touching anything. Finally, check the cron entry or "
    "the systemd timer that runs logrotate, because a rule that never runs rotates nothing, "
    "and watch the disk usage for a few days to make sure old archives are really removed. "
    "On hosts with several applications, give each one its own rule file under "
    "/etc/logrotate.d rather than editing the main configuration, so a package upgrade never "
    "overwrites your changes. Use the dateext option if you want rotated files named by date "
    "instead of by number, which makes it easier to find the log of a given day. Remember "
    "that the user running logrotate must be able to write to the directory, and use the su "
    "directive when the directory belongs to an unprivileged account. Keep an eye on the "
    "size of each log as well: maxsize rotates a file early when it grows too fast."
)
# The same answer with three words changed.
ANSWER_EDITED = (
    ANSWER.replace("fourteen", "seven").replace("debug", "verbose").replace("Finally", "Then")
)
UNRELATED = (
    "A sourdough starter needs flour, water and patience. Feed it twice a day with equal "
    "weights of flour and water, keep it somewhere warm, and discard half before each feeding "
    "so the yeast always has fresh food. After a week it should double within a few hours of "
    "a feeding and smell pleasantly sour; then it is ready to leaven a loaf of bread."
)
CJK_ANSWER = (
    "日志轮转可以通过 logrotate 完成。每天轮转一次,保留十四份,除了最新的文件以外全部压缩。"
    "如果应用程序一直打开文件句柄,请使用 copytruncate,或者在轮转后发送信号让它重新打开文件。"
    "先用调试模式测试规则,它会打印将要执行的操作而不改动任何文件。"
    "最后检查运行 logrotate 的定时任务或者 systemd 定时器,因为从不运行的规则什么也不会轮转。"
    "在有多个应用的主机上,为每个应用在 /etc/logrotate.d 下单独写一个规则文件,"
    "而不是修改主配置文件,这样软件包升级就不会覆盖你的修改。"
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ""),
        ("   \n\t ", ""),
        ("Hello,   WORLD!!!", "hello world"),
        ("Straße", "strasse"),  # casefold, not lower
        ("\ufb01ne \uff21\uff22\uff23", "fine abc"),  # NFKC: ligature and full-width letters
        ("end... of -- line\r\n", "end of line"),
        ("I ❤ it; you 👎 it.", "i ❤ it you 👎 it"),  # symbols and emoji are content
        ("你好,世界。", "你好 世界"),
        ("snake_case stays", "snake_case stays"),
    ],
)
def test_normalise(text, expected):
    assert normalise(text) == expected


def test_exact_key_ignores_case_spacing_and_punctuation():
    a = exact_key(prompt_text="How do I rotate logs?", chosen="Use logrotate.")
    b = exact_key(prompt_text="  how do i ROTATE logs ", chosen="use   logrotate!")
    assert a == b
    assert len(a) == 64
    assert int(a, 16) >= 0


def test_exact_key_differs_when_the_answer_differs():
    a = exact_key(prompt_text="How do I rotate logs?", chosen="Use logrotate.")
    b = exact_key(prompt_text="How do I rotate logs?", chosen="Use cron.")
    assert a != b


def test_exact_key_separates_prompt_from_answer():
    # Without a separator "a b" + "c" and "a" + "b c" would hash the same text.
    assert exact_key(prompt_text="a b", chosen="c") != exact_key(prompt_text="a", chosen="b c")


def test_exact_key_treats_a_missing_answer_as_empty():
    assert exact_key(prompt_text="q", chosen=None) == exact_key(prompt_text="q", chosen="")


@pytest.mark.parametrize(
    ("text", "k", "expected"),
    [
        ("", 5, set()),
        ("!!!", 5, set()),
        ("abc", 5, {"abc"}),
        ("abcde", 5, {"abcde"}),
        ("abcdef", 5, {"abcde", "bcdef"}),
        ("Ab, CD", 3, {"ab ", "b c", " cd"}),
        ("你好世界", 2, {"你好", "好世", "世界"}),
    ],
)
def test_shingles_are_character_k_grams_of_the_normalised_text(text, k, expected):
    assert shingles(text, k=k) == expected


def test_shingles_refuse_a_size_below_one():
    with pytest.raises(ValueError, match=BAD_SHINGLE_SIZE):
        shingles("abc", k=0)


def test_minhash_is_deterministic_for_the_same_text():
    assert np.array_equal(minhash(ANSWER).hashvalues, minhash(ANSWER).hashvalues)
    assert minhash(ANSWER).scheme == MINHASH_SCHEME


def test_minhash_estimates_high_similarity_for_a_few_changed_words():
    assert minhash(ANSWER).jaccard(minhash(ANSWER_EDITED)) >= 0.9


def test_minhash_estimates_low_similarity_for_unrelated_text():
    assert minhash(ANSWER).jaccard(minhash(UNRELATED)) < 0.3


def test_signature_round_trips_through_bytes():
    sketch = minhash(ANSWER)
    data = minhash_to_bytes(sketch)
    assert len(data) == NUM_PERM * 4
    restored = minhash_from_bytes(data)
    assert np.array_equal(restored.hashvalues, sketch.hashvalues)
    assert restored.jaccard(sketch) == 1.0
    assert restored.jaccard(minhash(ANSWER_EDITED)) == sketch.jaccard(minhash(ANSWER_EDITED))


def test_signature_bytes_are_little_endian_uint32():
    sketch = minhash("hello world")
    data = minhash_to_bytes(sketch)
    assert int.from_bytes(data[:4], "little") == int(sketch.hashvalues[0])


def test_signature_from_a_memoryview_as_psycopg_returns_bytea():
    data = minhash_to_bytes(minhash(ANSWER))
    assert np.array_equal(
        minhash_from_bytes(memoryview(data)).hashvalues, minhash(ANSWER).hashvalues
    )


@pytest.mark.parametrize("data", [b"", b"abc", b"12345"])
def test_signature_from_bytes_refuses_a_wrong_length(data):
    with pytest.raises(ValueError, match=BAD_SIGNATURE_BYTES.format(size=4)):
        minhash_from_bytes(data)


def test_signature_to_bytes_refuses_another_scheme():
    from datasketch import MinHash

    other = MinHash(num_perm=NUM_PERM, scheme="affine64")
    with pytest.raises(ValueError) as exc:
        minhash_to_bytes(other)
    assert str(exc.value) == WRONG_SCHEME.format(scheme="affine64", expected=MINHASH_SCHEME)


def test_index_finds_a_near_duplicate_with_a_few_words_changed():
    index = NearDupIndex(threshold=0.9)
    index.add("answer", minhash(ANSWER))
    index.add("bread", minhash(UNRELATED))
    match = index.best_match(minhash(ANSWER_EDITED))
    assert match is not None
    key, jaccard = match
    assert key == "answer"
    assert 0.9 <= jaccard < 1.0


def test_index_finds_a_near_duplicate_in_chinese():
    edited = CJK_ANSWER.replace("十四", "七")
    index = NearDupIndex(threshold=0.9)
    index.add("cjk", minhash(CJK_ANSWER))
    assert index.best_match(minhash(edited)) is not None
    assert index.best_match(minhash(edited))[0] == "cjk"


def test_index_does_not_match_unrelated_text():
    index = NearDupIndex(threshold=0.9)
    index.add("answer", minhash(ANSWER))
    assert index.query(minhash(UNRELATED)) == []
    assert index.best_match(minhash(UNRELATED)) is None


def test_index_matches_an_exact_copy_with_jaccard_one():
    index = NearDupIndex()
    index.add(7, minhash(ANSWER))
    assert index.best_match(minhash(ANSWER)) == (7, 1.0)


def test_best_match_verifies_lsh_candidates_against_the_threshold():
    # A signature that agrees with the indexed one on the first LSH band only: LSH returns it
    # as a candidate, but its estimated Jaccard is far below the threshold.
    original = minhash(ANSWER)
    index = NearDupIndex(threshold=0.9)
    index.add("answer", original)
    band = index._lsh.r
    values = original.hashvalues.copy()
    values[band:] = values[band:] ^ np.uint32(1)
    probe = minhash_from_bytes(values.astype("<u4").tobytes())
    assert index.query(probe) == ["answer"]
    assert original.jaccard(probe) == band / NUM_PERM
    assert index.best_match(probe) is None


def test_best_match_prefers_the_closest_and_breaks_ties_by_insertion_order():
    index = NearDupIndex(threshold=0.8)
    index.add("first", minhash(ANSWER))
    index.add("second", minhash(ANSWER))
    index.add("edited", minhash(ANSWER_EDITED))
    assert index.query(minhash(ANSWER)) == ["first", "second", "edited"]
    assert index.best_match(minhash(ANSWER)) == ("first", 1.0)


def test_adding_a_key_again_replaces_its_signature():
    index = NearDupIndex()
    index.add("k", minhash(UNRELATED))
    index.add("k", minhash(ANSWER))
    assert len(index) == 1
    assert index.best_match(minhash(UNRELATED)) is None
    assert index.best_match(minhash(ANSWER)) == ("k", 1.0)


def test_removed_keys_are_no_longer_matched():
    index = NearDupIndex()
    index.add("k", minhash(ANSWER))
    index.remove("k")
    index.remove("never-added")
    assert "k" not in index
    assert index.best_match(minhash(ANSWER)) is None


def test_index_rebuilt_from_stored_bytes_matches_like_the_original():
    stored = {
        "answer": minhash_to_bytes(minhash(ANSWER)),
        "bread": minhash_to_bytes(minhash(UNRELATED)),
    }
    index = NearDupIndex()
    index.add_many((key, minhash_from_bytes(data)) for key, data in stored.items())
    assert len(index) == 2
    assert index.best_match(minhash(ANSWER_EDITED))[0] == "answer"


def test_index_refuses_signatures_of_another_size():
    index = NearDupIndex(num_perm=64)
    with pytest.raises(ValueError) as exc:
        index.add("k", minhash(ANSWER))
    assert str(exc.value) == WRONG_NUM_PERM.format(got=NUM_PERM, expected=64)


@pytest.mark.parametrize("threshold", [0.0, -0.1, 1.5])
def test_index_refuses_a_threshold_outside_zero_one(threshold):
    with pytest.raises(ValueError, match=BAD_THRESHOLD):
        NearDupIndex(threshold=threshold)


def test_minhash_of_a_100kb_text_matches_itself():
    text = (ANSWER + " ") * (100_000 // len(ANSWER))
    assert len(text) >= 99_000
    index = NearDupIndex()
    index.add("long", minhash(text))
    assert index.best_match(minhash(text + " one more sentence")) is not None
