"""Decoding speed: `minitf evaluate`'s decoding of a test set against a PyTorch eager decoder of the same model.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python tools/bench_decode.py \\
        --checkpoint runs/m30k/best.safetensors --src data/multi30k/test_2016_flickr.de.gz
    python tools/bench_decode.py --checkpoint CKPT --src SRC --limit 200 --beam 1 5 --rounds 3
    python tools/bench_decode.py --checkpoint CKPT --src SRC --quick     # smoke test
    python tools/bench_decode.py --checkpoint CKPT --src SRC --only minitf  # without PyTorch

minitf: the sentences' token ids go through translate_ids (sorted by length, batches of
--batch-size, greedy or beam search with the key/value cache), the code `minitf evaluate`
runs after tokenizing. PyTorch: the checkpoint's weights copied into torch.nn.Transformer
(examples/torch_parity.py's TorchTransformer: same embedding, positions and tied output),
the encoder run by torch, and a decoder step written here over that model's own weights
with a key/value cache too (self-attention keys/values appended per step, cross-attention
keys/values projected once), the same batches, the same length limits, banned tokens and
beam rules (the host-side bookkeeping is minitf's own: nbest.Finished, decode._best_reachable).
Tokenizing is not timed on either side. Each framework decodes in its own subprocess with
--threads threads; the two alternate for --rounds rounds and the table shows medians.
The greedy outputs of both are compared token for token.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import machine  # tools/machine.py: the CPU and the BLAS kernel NumPy runs

ROOT = Path(__file__).resolve().parents[1]
OPTIONS = dict(length_penalty=0.6, max_len_a=1.5, max_len_b=10)  # `minitf evaluate`'s defaults


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="a checkpoint written by `minitf train`")
    parser.add_argument("--src", required=True, help="source sentences, one per line (plain or .gz)")
    parser.add_argument("--limit", type=int, help="decode the first N sentences only")
    parser.add_argument("--beam", type=int, nargs="+", default=[1, 5], help="beam sizes (1 = greedy; default 1 5)")
    parser.add_argument("--batch-size", type=int, default=64, help="sentences per batch (evaluate's default 64)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; medians over them")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", choices=["minitf", "torch"])
    parser.add_argument("--quick", action="store_true", help="smoke test: 16 sentences, beams 1 and 2, 1 round")
    parser.add_argument("--worker", choices=["minitf", "torch"], help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.limit, args.beam, args.rounds = min(args.limit or 16, 16), [1, 2], 1
    if args.worker:
        result = run_worker(args)
        Path(args.result).write_text(json.dumps(result), encoding="utf-8")
        return
    frameworks = [args.only] if args.only else ["minitf", "torch"]
    if "torch" in frameworks and not args.only:
        try:
            import torch  # noqa: F401, PLC0415
        except ImportError:
            print("PyTorch is not installed: minitf only (pip install torch to compare)")
            frameworks = ["minitf"]
    print(f"machine: {machine.describe()}")
    print(f"checkpoint: {args.checkpoint}; source: {args.src}; threads: {args.threads}; "
          f"batch size: {args.batch_size}")
    load_before = os.getloadavg()
    rounds = []
    for number in range(args.rounds):
        order = frameworks if number % 2 == 0 else frameworks[::-1]  # who goes first alternates too
        rounds.append({name: spawn(name, args) for name in order})
        print(f"round {number + 1}: " + "; ".join(
            f"{name} " + (r["error"] if "error" in r else
                          ", ".join(f"beam {b} {s:.2f} s" for b, s in r["seconds"].items()))
            for name, r in rounds[-1].items()), flush=True)
    load_after = os.getloadavg()
    print(f"load average (1, 5 min): {load_before[0]:.2f}, {load_before[1]:.2f} before the rounds; "
          f"{load_after[0]:.2f}, {load_after[1]:.2f} after, on {os.cpu_count()} cores")
    print_table(args, frameworks, rounds)


def spawn(framework: str, args: argparse.Namespace) -> dict:
    threads = str(args.threads)
    env = dict(os.environ, OMP_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    with tempfile.TemporaryDirectory() as folder:
        result = Path(folder) / "result.json"
        cmd = [sys.executable, __file__, "--worker", framework, "--result", str(result),
               "--checkpoint", args.checkpoint, "--src", args.src, "--batch-size", str(args.batch_size),
               "--threads", threads, "--beam", *map(str, args.beam)]
        cmd += ["--limit", str(args.limit)] if args.limit else []
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            lines = done.stderr.strip().splitlines()
            return {"error": f"failed: {lines[-1] if lines else done.returncode}"}
        return json.loads(result.read_text(encoding="utf-8"))


def print_table(args: argparse.Namespace, frameworks: list[str], rounds: list[dict]) -> None:
    runs = {name: [r[name] for r in rounds if "error" not in r[name]] for name in frameworks}
    ok = [name for name in frameworks if runs[name]]
    if not ok:
        raise SystemExit("every run failed")
    sentences = runs[ok[0]][0]["sentences"]
    print(f"\n{sentences} sentences ({runs[ok[0]][0]['skipped']} skipped: empty, blank or too long); seconds to decode "
          f"the set (tokenizing not timed): median of {len(rounds)} alternating rounds (fastest round)\n")
    header = "| search | " + " | ".join(f"{name} s (fastest) | {name} sent/s" for name in ok)
    header += " | minitf / PyTorch (fastest) |" if len(ok) == 2 else " |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for beam in map(str, args.beam):
        medians = {name: statistics.median(run["seconds"][beam] for run in runs[name]) for name in ok}
        fastest = {name: min(run["seconds"][beam] for run in runs[name]) for name in ok}
        cells = [f"{medians[n]:.2f} ({fastest[n]:.2f}) | {sentences / medians[n]:.1f}" for n in ok]
        ratio = (f" | {medians['minitf'] / medians['torch']:.2f} ({fastest['minitf'] / fastest['torch']:.2f}) |"
                 if len(ok) == 2 else " |")
        label = "greedy" if beam == "1" else f"beam {beam}"
        print(f"| {label} | " + " | ".join(cells) + ratio)
    if len(ok) == 2:
        print()
        for beam in map(str, args.beam):
            ours, theirs = runs["minitf"][0]["outputs"][beam], runs["torch"][0]["outputs"][beam]
            same = sum(a == b for a, b in zip(ours, theirs))
            label = "greedy" if beam == "1" else f"beam {beam}"
            print(f"{label}: {same} / {len(ours)} sentences decode to the same tokens in minitf and PyTorch")
    for name in frameworks:
        failed = [r[name]["error"] for r in rounds if "error" in r[name]]
        if failed:
            print(f"{name}: {len(failed)} of {len(rounds)} rounds failed: {failed[0]}")


# ---- workers ----------------------------------------------------------------------------

def read_sources(path: str, limit: int | None) -> list[str]:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        lines = [line.rstrip("\r\n") for line in f]
    return lines[:limit] if limit else lines


def run_worker(args: argparse.Namespace) -> dict:
    from minitf.translation import Translator  # noqa: PLC0415

    translator = Translator.from_checkpoint(args.checkpoint)
    sentences = read_sources(args.src, args.limit)
    ids = [translator.tokenizer.encode(s) for s in sentences]
    kept = [seq for s, seq in zip(sentences, ids) if translator._problem(s, seq) is None]
    decode = (minitf_decoder(translator, args.batch_size) if args.worker == "minitf"
              else torch_decoder(translator, args.threads, args.batch_size))
    decode(kept[:4], 1)  # warm-up: first calls allocate
    seconds, outputs = {}, {}
    for beam in args.beam:
        t0 = time.perf_counter()
        outputs[beam] = decode(kept, beam)
        seconds[beam] = time.perf_counter() - t0
    return {"sentences": len(kept), "skipped": len(sentences) - len(kept), "seconds": seconds,
            "outputs": {beam: [list(map(int, o)) for o in out] for beam, out in outputs.items()}}


def minitf_decoder(translator, batch_size: int):
    from minitf.translation.decode import translate_ids  # noqa: PLC0415

    def decode(ids, beam):  # as Translator._translate, once the sentences are encoded and checked
        return translate_ids(translator.model, ids, bos_id=translator.bos_id, eos_id=translator.eos_id,
                             pad_id=translator.pad_id, banned_ids=translator.banned_ids, beam_size=beam,
                             batch_size=batch_size, **OPTIONS)
    return decode


def torch_decoder(translator, threads: int, batch_size: int):
    import numpy as np  # noqa: PLC0415
    import torch  # noqa: PLC0415

    sys.path.insert(0, str(ROOT / "examples"))
    from torch_parity import TorchTransformer, torch_name  # noqa: PLC0415

    from minitf.translation import decode as mdecode  # noqa: PLC0415
    from minitf.translation.nbest import Finished  # noqa: PLC0415

    torch.set_num_threads(threads)
    c = translator.model.config
    net = TorchTransformer(c).float().eval()
    params = dict(net.named_parameters())
    with torch.no_grad():
        for name, value in translator.model.state_dict(remove_duplicate=True).items():
            params[torch_name(name)].copy_(torch.from_numpy(np.asarray(value, dtype=np.float32)))
    decoder = TorchStepDecoder(net, torch)
    banned = mdecode._banned(translator.bos_id, translator.eos_id, [translator.pad_id, *translator.banned_ids])
    bos, eos, pad = translator.bos_id, translator.eos_id, translator.pad_id

    def greedy(src, mask, limits):
        outputs = [[] for _ in range(src.shape[0])]
        active = np.flatnonzero(limits > 0)
        state = decoder.start(src[active], mask[active])
        tokens = torch.full((active.size, 1), bos, dtype=torch.long)
        t = 0
        while active.size:
            logits = decoder.step(state, tokens, t)
            logits[:, banned] = -float("inf")
            next_ids = logits.argmax(dim=-1)
            host = next_ids.numpy()
            is_eos = host == eos
            for row, token, end in zip(active.tolist(), host.tolist(), is_eos.tolist()):
                if not end:
                    outputs[row].append(token)
            t += 1
            done = is_eos | (t >= limits[active])
            if done.all():
                break
            keep = np.flatnonzero(~done)
            active, tokens = active[keep], next_ids[keep][:, None]
            decoder.keep(state, torch.from_numpy(keep), torch.from_numpy(keep))
        return outputs

    def beam_search(src, mask, limits, k):  # decode.beam_search's rules, on torch tensors
        finished = Finished(src.shape[0], 1)
        active = np.flatnonzero(limits > 0)
        state = decoder.start(src[active], mask[active], repeat=k)
        n = active.size
        tokens = torch.full((n * k, 1), bos, dtype=torch.long)
        scores = torch.full((n, k), -float("inf"), dtype=torch.float64)
        scores[:, 0] = 0.0
        history = np.zeros((n * k, 0), dtype=np.int64)
        first_k = np.arange(2 * k) < k
        t = 0
        while active.size:
            n = active.size
            logits = decoder.step(state, tokens, t)
            log_probs = logits.double() - torch.logsumexp(logits, dim=-1, keepdim=True).double()
            log_probs[:, banned] = -float("inf")
            vocab = log_probs.shape[-1]
            candidates = (scores[:, :, None] + log_probs.reshape(n, k, vocab)).reshape(n, k * vocab)
            top_scores, top = torch.topk(candidates, 2 * k, dim=1)
            top, top_scores = top.numpy(), top_scores.numpy()
            beam, token = top // vocab, top % vocab
            t += 1
            is_eos = token == eos
            for i, col in zip(*np.nonzero(is_eos & first_k & np.isfinite(top_scores))):
                finished.add(active[i], top_scores[i, col] / mdecode.length_penalty_factor(t, OPTIONS["length_penalty"]),
                             top_scores[i, col], history[i * k + int(beam[i, col])])
            non_eos = ~is_eos
            chosen = non_eos & (np.cumsum(non_eos, axis=1) <= k)
            cols = np.nonzero(chosen)[1].reshape(n, k)
            rows = np.arange(n)[:, None]
            parent = (rows * k + beam[rows, cols]).reshape(-1)
            new_tokens = token[rows, cols].reshape(-1)
            new_scores = top_scores[rows, cols]
            history = np.concatenate([history[parent], new_tokens[:, None]], axis=1)
            at_limit = t >= limits[active]
            factor = mdecode.length_penalty_factor(t, OPTIONS["length_penalty"])
            for i in np.flatnonzero(at_limit).tolist():
                for j in range(k):
                    if np.isfinite(new_scores[i, j]):
                        finished.add(active[i], new_scores[i, j] / factor, new_scores[i, j], history[i * k + j])
            reachable = mdecode._best_reachable(new_scores, t, limits[active], OPTIONS["length_penalty"])
            done = at_limit | (reachable <= finished.threshold(active))
            keep = np.flatnonzero(~done)
            if keep.size == 0:
                break
            kept_beams = (keep[:, None] * k + np.arange(k)).reshape(-1)
            decoder.keep(state, torch.from_numpy(parent[kept_beams]), torch.from_numpy(kept_beams))
            history, active = history[kept_beams], active[keep]
            tokens = torch.from_numpy(new_tokens[kept_beams][:, None])
            scores = torch.from_numpy(new_scores[keep])
        return finished.best_tokens()

    def decode(ids, beam):  # translate_ids' batching: sorted by length, padded, put back in order
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        outputs = [[] for _ in ids]
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                chunk = order[start:start + batch_size]
                lengths = np.array([len(ids[i]) for i in chunk])
                src = np.full((len(chunk), max(1, lengths.max())), pad, dtype=np.int64)
                for row, i in enumerate(chunk):
                    src[row, :lengths[row]] = ids[i]
                mask = np.arange(src.shape[1]) < lengths[:, None]
                limits = mdecode.length_limits(translator.model, mask, OPTIONS["max_len_a"], OPTIONS["max_len_b"])
                found = greedy(src, mask, limits) if beam == 1 else beam_search(src, mask, limits, beam)
                for i, result in zip(chunk, found):
                    outputs[i] = result
        return outputs
    return decode


class TorchStepDecoder:
    """One decoder position per call over a torch.nn.Transformer's weights, with a key/value cache."""

    def __init__(self, net, torch) -> None:
        self.net, self.torch, self.F = net, torch, torch.nn.functional
        self.layers = net.transformer.decoder.layers
        self.heads = self.layers[0].self_attn.num_heads

    def _heads(self, x):  # (B, L, D) -> (B, H, L, D / H)
        b, length, d = x.shape
        return x.reshape(b, length, self.heads, d // self.heads).transpose(1, 2)

    def _project(self, attn, x, which: int):
        d = attn.embed_dim
        rows = slice(which * d, (which + 1) * d)
        return self._heads(self.F.linear(x, attn.in_proj_weight[rows], attn.in_proj_bias[rows]))

    def start(self, src, mask, repeat: int = 1) -> dict:
        """Encode (B, S) ids; project each layer's cross-attention keys and values once."""
        torch = self.torch
        src, mask = torch.from_numpy(src), torch.from_numpy(mask)
        memory = self.net.transformer.encoder(self.net.embed(src), src_key_padding_mask=~mask)
        if repeat > 1:  # beams of a sentence lie together
            memory, mask = memory.repeat_interleave(repeat, 0), mask.repeat_interleave(repeat, 0)
        cross = [(self._project(layer.multihead_attn, memory, 1), self._project(layer.multihead_attn, memory, 2))
                 for layer in self.layers]
        return {"mask": mask[:, None, None, :], "cross": cross, "self": [None] * len(self.layers)}

    def _attend(self, attn, x, k, v, mask=None):
        out = self.F.scaled_dot_product_attention(self._project(attn, x, 0), k, v, attn_mask=mask)
        b, _, length, _ = out.shape
        return self.F.linear(out.transpose(1, 2).reshape(b, length, -1), attn.out_proj.weight, attn.out_proj.bias)

    def step(self, state: dict, tokens, t: int):
        """Logits (B, V) of the position after `tokens` (B, 1) at position t."""
        torch = self.torch
        y = self.F.embedding(tokens, self.net.embedding) * self.net.config.d_model ** 0.5
        y = y + self.net.positions[t:t + 1].to(y.dtype)
        for i, layer in enumerate(self.layers):
            def self_attention(x):
                k, v = self._project(layer.self_attn, x, 1), self._project(layer.self_attn, x, 2)
                if state["self"][i] is not None:
                    k, v = torch.cat([state["self"][i][0], k], 2), torch.cat([state["self"][i][1], v], 2)
                state["self"][i] = (k, v)
                return self._attend(layer.self_attn, x, k, v)

            def cross_attention(x):
                return self._attend(layer.multihead_attn, x, *state["cross"][i], state["mask"])

            def feed_forward(x):
                return layer.linear2(layer.activation(layer.linear1(x)))

            if layer.norm_first:
                y = y + self_attention(layer.norm1(y))
                y = y + cross_attention(layer.norm2(y))
                y = y + feed_forward(layer.norm3(y))
            else:
                y = layer.norm1(y + self_attention(y))
                y = layer.norm2(y + cross_attention(y))
                y = layer.norm3(y + feed_forward(y))
        y = self.net.transformer.decoder.norm(y)
        return self.F.linear(y[:, -1], self.net.embedding)

    def keep(self, state: dict, index, rows) -> None:
        """Rows `index` of the self-attention caches (a hypothesis's parent), rows `rows` of the rest."""
        state["self"] = [(k[index], v[index]) for k, v in state["self"]]
        state["cross"] = [(k[rows], v[rows]) for k, v in state["cross"]]
        state["mask"] = state["mask"][rows]


if __name__ == "__main__":
    main()
