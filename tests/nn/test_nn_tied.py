"""A tied weight (one parameter reachable under two names) in state dicts and files: listed under
every name as PyTorch does, stored once by minitf.save, accepted in either form by
load_state_dict, written once into translation checkpoints (whose loader takes both forms)."""
import numpy as np
import pytest

import minitf
from minitf import nn, serialization
from minitf.nn import Seq2SeqTransformer, TransformerConfig, parameter_shapes
from minitf.translation.checkpoint import load_checkpoint, save_checkpoint


class Tied(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(5, 3)
        self.head = nn.Linear(3, 5, bias=False)
        self.head.weight = self.embed.weight


def test_state_dict_lists_a_tied_weight_under_every_name_as_one_array():
    model = Tied()
    state = model.state_dict()
    assert list(state) == ["embed.weight", "head.weight"]
    assert state["head.weight"] is state["embed.weight"]  # one copy, as PyTorch's share storage
    np.testing.assert_array_equal(state["head.weight"], model.embed.weight.numpy())
    assert list(model.state_dict(remove_duplicate=True)) == ["embed.weight"]


def test_tied_weights_listed_twice_are_accepted_when_equal():
    a, b = Tied(), Tied()
    state = a.state_dict()
    assert list(state) == ["embed.weight", "head.weight"]  # as PyTorch lists a tied weight
    torch_style = {"embed.weight": state["embed.weight"], "head.weight": state["embed.weight"].copy()}
    b.load_state_dict(torch_style)
    np.testing.assert_array_equal(b.head.weight.numpy(), state["embed.weight"])
    b.load_state_dict({"head.weight": state["embed.weight"] + 1})  # either name alone is enough
    np.testing.assert_array_equal(b.embed.weight.numpy(), state["embed.weight"] + 1)
    torch_style["head.weight"] = torch_style["head.weight"] + 1
    with pytest.raises(ValueError, match="'embed.weight' and 'head.weight'.*different"):
        b.load_state_dict(torch_style)


def test_a_shared_module_lists_its_parameters_under_both_paths():
    model = nn.Module()
    model.first = nn.Linear(2, 2)
    model.again = model.first
    assert list(model.state_dict()) == ["first.weight", "first.bias", "again.weight", "again.bias"]


def test_save_stores_a_tied_weight_once_and_load_gives_every_name_back(tmp_path):
    model = Tied()
    path = minitf.save(model.state_dict(), tmp_path / "tied.safetensors")
    assert list(serialization.open_file(path).arrays) == ["embed.weight"]  # one buffer, no overlap
    loaded = minitf.load(path)
    assert list(loaded) == ["embed.weight", "head.weight"]
    np.testing.assert_array_equal(loaded["head.weight"], model.embed.weight.numpy())
    for state in (loaded, {"embed.weight": loaded["embed.weight"]}, {"head.weight": loaded["head.weight"]}):
        fresh = Tied()
        assert fresh.load_state_dict(state, strict=True) == ([], [])
        np.testing.assert_array_equal(fresh.head.weight.numpy(), model.embed.weight.numpy())
        assert fresh.head.weight is fresh.embed.weight


def test_two_values_for_the_names_of_one_tied_weight_are_refused():
    state = {k: v.copy() for k, v in Tied().state_dict().items()}
    state["head.weight"] += 1
    with pytest.raises(ValueError, match="'embed.weight' and 'head.weight' name one tied parameter.*different"):
        Tied().load_state_dict(state)


def test_torch_loads_our_state_dict_strictly():
    torch = pytest.importorskip("torch")

    class TorchTied(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(5, 3)
            self.head = torch.nn.Linear(3, 5, bias=False)
            self.head.weight = self.embed.weight

    ours, theirs = Tied(), TorchTied()
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()}, strict=True)
    np.testing.assert_array_equal(theirs.head.weight.detach().numpy(), ours.embed.weight.numpy())


CONFIG = TransformerConfig(src_vocab_size=11, tgt_vocab_size=11, d_model=4, n_heads=2, n_encoder_layers=1,
                           n_decoder_layers=1, d_ff=6, max_len=8, dropout=0.0)  # shared embeddings


def test_translation_checkpoints_hold_each_parameter_once_and_load_both_forms(tmp_path):
    model = Seq2SeqTransformer(CONFIG)
    state = model.state_dict()
    assert "src_embed.weight" in state and state["src_embed.weight"] is state["tgt_embed.weight"]
    meta = {"model_config": CONFIG.to_dict()}
    new = save_checkpoint(tmp_path / "new.safetensors", state, meta)
    # written before this change: each parameter once; or by hand, with the tied name a copy
    old = save_checkpoint(tmp_path / "old.safetensors", model.state_dict(remove_duplicate=True), meta)
    both = save_checkpoint(tmp_path / "both.safetensors", {k: v.copy() for k, v in state.items()}, meta)
    assert list(load_checkpoint(new)[0]) == list(parameter_shapes(CONFIG)) == \
        list(load_checkpoint(old)[0])
    assert list(load_checkpoint(both)[0]) == list(state)
    for path in (new, old, both):
        fresh = Seq2SeqTransformer(CONFIG)
        fresh.load_state_dict(load_checkpoint(path)[0], strict=True)
        np.testing.assert_array_equal(fresh.src_embed.weight.numpy(), model.tgt_embed.weight.numpy())


def test_a_nan_in_a_tied_weight_does_not_break_the_state_dict_round_trip():
    model = Tied()
    model.embed.weight.data[0, 0] = np.nan
    model.load_state_dict(model.state_dict())  # one array under both names
    copies = {name: array.copy() for name, array in model.state_dict().items()}  # equal, nan included
    model.load_state_dict(copies)
    assert np.isnan(model.head.weight.numpy()[0, 0])
    copies["head.weight"][1, 1] += 1.0
    with pytest.raises(ValueError, match="'embed.weight' and 'head.weight' name one tied parameter"):
        model.load_state_dict(copies)
