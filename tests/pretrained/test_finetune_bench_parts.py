"""tools/pretrained_finetune.py's parts (bench_pretrained.py --case finetune): transformers' token ids are
checked against minitf's, and its torch model, parameter groups and schedule train as the example's minitf
ones (the whole runs are tested in tests/test_tools.py)."""
from pathlib import Path

import pytest

from bert_files import tiny_bert_folder

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / "tools"


def load_module(path: Path):
    import importlib.util

    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_finetune_stops_when_the_token_ids_differ(tmp_path):
    finetune = load_module(TOOLS / "pretrained_finetune.py")
    ex = load_module(ROOT / "examples" / "finetune_classifier.py")
    args = finetune.example_args(ex, tiny_bert_folder(tmp_path / "tiny"), "tiny", seed=0)
    splits = ex.make_splits(args)
    tokenizer = ex.load_bert(args.model)[0].tokenizer
    rows = {s: ex.tokenize(tokenizer, texts, args.max_length) for s, (texts, _) in splits.items()}
    finetune.check_same_ids(ex, args, splits, rows, lowercase=False)  # equal: passes
    rows["val"][3] = rows["val"][3][:-1]
    with pytest.raises(SystemExit, match=r"token ids differ on the val sentence"):
        finetune.check_same_ids(ex, args, splits, rows, lowercase=False)


def test_torch_head_groups_and_schedule_train_as_the_examples(tmp_path):
    """Without dropout and with the same head weights, three steps of the example's minitf setup and of
    the torch one (torch_classifier, decay_groups, LambdaLR, clipping) give the same losses and weights."""
    torch = pytest.importorskip("torch", reason="install torch to compare with transformers")
    transformers = pytest.importorskip("transformers", reason="pip install -e '.[pretrained]' to compare")
    import numpy as np

    import minitf.functional as F
    from minitf import nn, optim
    finetune = load_module(TOOLS / "pretrained_finetune.py")
    ex = load_module(ROOT / "examples" / "finetune_classifier.py")
    folder = tiny_bert_folder(tmp_path / "tiny", config={"hidden_dropout_prob": 0.0,
                                                         "attention_probs_dropout_prob": 0.0})
    encoder, tokenizer = ex.load_bert(folder)
    ours = ex.Classifier(encoder, 4, 0.0)
    theirs = finetune.torch_classifier(transformers.BertModel.from_pretrained(str(folder)), 4, 0.0)
    ours.train()
    theirs.train()
    with torch.no_grad():
        for name in ("weight", "bias"):
            getattr(theirs.head, name).copy_(torch.from_numpy(getattr(ours.head, name).numpy()))
    texts, labels = ex.make_split("train", 6, seed=0)
    ids, mask = ex.batch(ex.tokenize(tokenizer, texts, 12), 0)
    optimizer = ex.optimizer_for(ours, 1e-2, freeze_encoder=False)
    scheduler = optim.lr_scheduler.LambdaLR(optimizer, ex.warmup_then_linear(1, 3))
    groups = ex.decay_groups(theirs.named_parameters())
    assert [g["weight_decay"] for g in groups] == [g["weight_decay"] for g in optimizer.param_groups] == [0.01, 0.0]
    torch_optimizer = torch.optim.AdamW(groups, lr=1e-2)
    torch_scheduler = torch.optim.lr_scheduler.LambdaLR(torch_optimizer, ex.warmup_then_linear(1, 3))
    for _ in range(3):
        loss = F.cross_entropy(ours(ids, mask), labels)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], ex.CLIP_NORM)
        optimizer.step()
        scheduler.step()
        torch_loss = torch.nn.functional.cross_entropy(theirs(*map(torch.from_numpy, (ids, mask))),
                                                       torch.from_numpy(labels))
        torch_optimizer.zero_grad()
        torch_loss.backward()
        torch.nn.utils.clip_grad_norm_([p for g in groups for p in g["params"]], ex.CLIP_NORM)
        torch_optimizer.step()
        torch_scheduler.step()
        assert float(loss) == pytest.approx(torch_loss.item(), rel=1e-5)
    params = dict(theirs.named_parameters())
    assert set(params) == {n for n, _ in ours.named_parameters()}
    for name, p in ours.named_parameters():
        if not name.endswith("attention.self.key.bias"):  # its true gradient is 0: Adam scales up float noise
            np.testing.assert_allclose(p.numpy(), params[name].detach().numpy(), atol=1e-5, err_msg=name)
