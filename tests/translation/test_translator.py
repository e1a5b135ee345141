"""Translator: loading a checkpoint, translating, and its errors."""
from __future__ import annotations

import numpy as np
import pytest

import minitf
from minitf.nn import Seq2SeqTransformer, TransformerConfig
from minitf.tokenizer import BPETokenizer
from minitf.translation.tokens import SPECIAL_TOKENS
from minitf.translation import CheckpointError, Translator, save_checkpoint
from tiny_runs import tiny_trainer


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny trainer after three epochs (39 steps), and its last.safetensors."""
    trainer = tiny_trainer(tmp_path_factory.mktemp("translator") / "run", epochs=3)
    trainer.fit()
    return trainer, trainer.out_dir / "last.safetensors"


@pytest.fixture(scope="module")
def translator(trained):
    return Translator.from_checkpoint(str(trained[1]))


def test_from_checkpoint_loads_the_model_and_tokenizer(trained, translator):
    trainer, _ = trained
    assert not translator.model.training
    assert translator.tokenizer.to_dict() == trainer.tokenizer.to_dict()
    assert translator.model.config == trainer.model.config
    for name, value in translator.model.state_dict().items():
        assert np.array_equal(value, trainer.model.state_dict()[name]), name


def test_greedy_translations_match_the_trainer(trained, translator):
    trainer, _ = trained
    sources = [s for s, _ in trainer.splits["val"][:5]]
    outputs = translator.translate(sources, beam_size=1)
    assert outputs == trainer.translate(sources)
    assert all(isinstance(o, str) for o in outputs) and any(outputs)


def test_beam_search_gives_one_translation_per_sentence(trained, translator):
    sources = [s for s, _ in trained[0].splits["val"][:3]]
    outputs = translator.translate(sources, beam_size=3, batch_size=2)
    assert len(outputs) == 3 and all(isinstance(o, str) for o in outputs)


def test_translating_no_sentences_gives_no_translations(translator):
    assert translator.translate([]) == []


def test_sentence_longer_than_the_model_allows_is_named(translator):
    sentences = ["one hundred", "seven hundred " * 100, "two"]
    with pytest.raises(ValueError, match=rf"sentence 2 has \d+ tokens, more than the model's maximum "
                                         rf"of {translator.max_source_tokens}"):
        translator.translate(sentences)


def test_empty_sentence_is_named(translator):
    with pytest.raises(ValueError, match="sentence 2 is empty"):
        translator.translate(["one", ""])


@pytest.mark.parametrize("blank", [" ", "\t  ", "\u00a0\u3000", "\u200b", "\u200c\u200d", "\ufeff\u2060 \u200b"])
def test_blank_sentence_is_named(translator, blank):
    assert translator.problem(blank) == "is blank (no visible character)"
    assert translator.problem(" one ") is None and translator.problem("\u200bone") is None
    with pytest.raises(ValueError, match=r"sentence 2 is blank \(no visible character\)"):
        translator.translate(["one", blank])


@pytest.mark.parametrize("text", ["one two", b"one two"])
def test_one_string_is_refused_not_read_as_a_list_of_characters(translator, text):
    with pytest.raises(TypeError, match=r"pass a list of sentences, e\.g\. \[text\]"):
        translator.translate(text)


@pytest.mark.parametrize("sentences, error", [
    ([""], "sentence 1 is empty"),
    (["one", "seven hundred " * 100], "sentence 2 has \\d+ tokens"),
    (["one", "x" * 100_000], "sentence 2 has \\d+ tokens"),
])
def test_a_generator_of_sentences_is_checked_like_a_list(translator, sentences, error):
    with pytest.raises(minitf.errors.InputError, match=error):
        translator.translate(s for s in sentences)
    assert translator.translate(s for s in ["one", "two"]) == translator.translate(["one", "two"])


def test_a_given_tokenizer_replaces_the_saved_one(trained):
    trainer, path = trained
    translator = Translator.from_checkpoint(str(path), tokenizer=trainer.tokenizer)
    assert translator.tokenizer is trainer.tokenizer


def test_vocabulary_mismatch_with_a_given_tokenizer_is_an_error(trained):
    trainer, path = trained
    texts = [s for pair in trainer.splits["train"] for s in pair]
    other = BPETokenizer.train(texts, trainer.tokenizer.vocab_size - 20, special_tokens=SPECIAL_TOKENS)
    with pytest.raises(ValueError, match=f"vocabulary mismatch: the tokenizer has {other.vocab_size} "
                                         f"tokens, the model {trainer.tokenizer.vocab_size}"):
        Translator.from_checkpoint(str(path), tokenizer=other)


def test_checkpoint_without_model_configuration_is_refused(tmp_path, trained):
    path = save_checkpoint(tmp_path / "bare.safetensors", trained[0].model.state_dict(), {})
    with pytest.raises(CheckpointError, match="lacks the model configuration") as err:
        Translator.from_checkpoint(str(path))
    assert str(path) in str(err.value)


def test_missing_checkpoint_is_a_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        Translator.from_checkpoint(str(tmp_path / "none.safetensors"))


class FavoursSpecials(Seq2SeqTransformer):
    """An untrained model whose most likely next tokens are the `favoured` ids, by far."""

    favoured: list[int] = []

    def decode(self, *args, **kwargs):
        logits = super().decode(*args, **kwargs)
        logits.data[..., self.favoured] += 100.0
        return logits


@pytest.mark.parametrize("beam_size", [1, 3])
def test_no_special_token_but_eos_is_ever_generated(beam_size):
    tokenizer = BPETokenizer.train(["one two three four five"] * 3, 280,
                                   special_tokens=[*SPECIAL_TOKENS, "<unk>"])
    minitf.manual_seed(0)
    model = FavoursSpecials(TransformerConfig(
        src_vocab_size=tokenizer.vocab_size, tgt_vocab_size=tokenizer.vocab_size, d_model=16, n_heads=2,
        n_encoder_layers=1, n_decoder_layers=1, d_ff=32, dropout=0.0, max_len=16))
    specials = tokenizer.special_tokens
    model.favoured = [specials[name] for name in ("<pad>", "<bos>", "<unk>")]
    translator = Translator(model, tokenizer)
    assert translator.banned_ids == sorted(model.favoured)
    outputs = translator.translate(["one two", "three", "five four"], beam_size=beam_size, max_len_b=4)
    assert len(outputs) == 3 and all(out and "<" not in out for out in outputs), outputs
