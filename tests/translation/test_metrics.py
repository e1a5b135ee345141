"""Corpus metrics (minitf.translation.metrics) against sacrebleu itself."""
import pytest
import sacrebleu

from minitf.translation.metrics import bleu, chrf, exact_match

HYPS = ["the cat sat on the mat .", "a dog barked loudly", "Hello, world!"]
REFS = ["the cat is sitting on the mat .", "the dog barked loudly", "hello world!"]


def test_perfect_hypotheses():
    assert bleu(REFS, REFS) == pytest.approx(100.0)
    assert chrf(REFS, REFS) == pytest.approx(100.0)
    assert exact_match(REFS, REFS) == 1.0


def test_matches_sacrebleu_corpus_scores():
    assert bleu(HYPS, REFS) == pytest.approx(sacrebleu.corpus_bleu(HYPS, [REFS]).score)
    assert chrf(HYPS, REFS) == pytest.approx(sacrebleu.corpus_chrf(HYPS, [REFS]).score)
    assert 0.0 < bleu(HYPS, REFS) < 100.0 and 0.0 < chrf(HYPS, REFS) < 100.0
    assert exact_match(HYPS, REFS) == 0.0


def test_known_small_cases():
    # 13a tokenization splits the final period off: "a b c d ." against itself is 100.
    assert bleu(["a b c d."], ["a b c d ."]) == pytest.approx(100.0)
    assert bleu(["x y z w"], ["a b c d"]) == pytest.approx(0.0)
    # Brevity penalty: a correct 4-word prefix of an 8-word reference, exp(1 - 8/4) * 100.
    ref = "one two three four five six seven eight"
    assert bleu(["one two three four"], [ref]) == pytest.approx(100.0 * 2.718281828459045 ** -1)
    assert exact_match(["a", "b", "c", "d"], ["a", "x", "c", "D"]) == 0.5


def test_lowercase_option():
    hyps, refs = ["The Cat Sat On The Mat"], ["the cat sat on the mat"]
    assert bleu(hyps, refs) < 100.0
    assert bleu(hyps, refs, lowercase=True) == pytest.approx(100.0)
    assert bleu(hyps, refs, lowercase=True) == pytest.approx(
        sacrebleu.corpus_bleu(hyps, [refs], lowercase=True).score)


def test_count_mismatch_names_both_counts():
    for metric in (bleu, chrf, exact_match):
        with pytest.raises(ValueError, match=r"3 hypotheses but 2 references"):
            metric(HYPS, REFS[:2])


def test_non_strings_and_empty():
    with pytest.raises(TypeError, match="hypotheses\\[0\\]"):
        bleu([["tokens"]], ["tokens"])
    assert bleu([], []) == 0.0 and chrf([], []) == 0.0 and exact_match([], []) == 0.0
    assert bleu(iter(["a b c d"]), ("a b c d",)) == pytest.approx(100.0)  # any sequences
