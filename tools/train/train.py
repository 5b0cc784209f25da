"""Train edgemoe's demo model: a small Qwen3-MoE language model on public-domain English.

Pinned environment and how to run it: tools/train/README.md. Everything is seeded; the run is
reproducible for the same thread count (floating-point reduction order depends on it).

Writes into --out:
  tokenizer.json      the byte-level BPE tokenizer trained here (Qwen2 pre-tokenizer regex)
  config.json         model hyperparameters
  ckpt.pt             weights + optimizer state, rewritten atomically every --ckpt-every steps
  train_log.tsv       step, tokens seen, train loss, balance loss, lr, val loss, seconds
  metrics.json        held-out loss, perplexity, bits per byte, per-layer expert load
  data/val.txt        the held-out documents, joined with <|endoftext|>
"""

import argparse
import json
import math
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

from model import MoeLM

# The pre-tokenizer regex of Qwen2 (llama.cpp's `tokenizer.ggml.pre = "qwen2"` uses the same one).
QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
EOT = "<|endoftext|>"
SPECIAL_TOKENS = [EOT, "<|im_start|>", "<|im_end|>"]
VAL_EVERY = 20  # every 20th document (in the fixed order below) is held out


def read_documents(data_root: Path) -> list[str]:
    """SOTU addresses (sorted by file name: year order), then Moby-Dick in the book's own order."""
    sotu = sorted((data_root / "datasets-sotu" / "data").glob("*.txt"))
    moby_dir = data_root / "datasets-moby-dick" / "data"
    moby = [moby_dir / n for n in json.loads((moby_dir / "file_list.json").read_text()) if n != "contents.txt"]
    docs = [p.read_text(encoding="utf-8").strip() for p in sotu + moby]
    if len(docs) < 300:
        raise SystemExit(f"expected the SOTU and Moby-Dick files under {data_root}, found {len(docs)} documents")
    return docs


def split_documents(docs: list[str]) -> tuple[list[str], list[str]]:
    train = [d for i, d in enumerate(docs) if i % VAL_EVERY != VAL_EVERY - 1]
    val = [d for i, d in enumerate(docs) if i % VAL_EVERY == VAL_EVERY - 1]
    return train, val


def train_tokenizer(train_docs: list[str], vocab_size: int) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(train_docs, trainer=trainer)
    return tok


def encode_stream(tok: Tokenizer, docs: list[str]) -> torch.Tensor:
    eot = tok.token_to_id(EOT)
    ids: list[int] = []
    for enc in tok.encode_batch(docs, add_special_tokens=False):
        ids.extend(enc.ids)
        ids.append(eot)
    return torch.tensor(ids, dtype=torch.long)


def token_byte_lengths(tok: Tokenizer) -> torch.Tensor:
    """UTF-8 byte count of each token's text (special tokens count 0: they are not text)."""
    byte_decoder = {c: b for b, c in enumerate_byte_alphabet()}
    lengths = torch.zeros(tok.get_vocab_size(), dtype=torch.long)
    for piece, idx in tok.get_vocab().items():
        if piece not in SPECIAL_TOKENS:
            lengths[idx] = len(bytes(byte_decoder[c] for c in piece))
    return lengths


def enumerate_byte_alphabet() -> list[tuple[int, str]]:
    """GPT-2's reversible byte -> printable character map (the one ByteLevel uses)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return [(b, chr(c)) for b, c in zip(printable, chars)]


@torch.no_grad()
def evaluate(model: MoeLM, stream: torch.Tensor, seq: int, max_windows: int, byte_len: torch.Tensor) -> dict:
    """Mean loss over non-overlapping windows of the held-out stream, plus per-layer expert load."""
    model.eval()
    n_windows = min((stream.numel() - 1) // seq, max_windows)
    nll_total, tokens, n_bytes = 0.0, 0, 0
    counts = None
    for w in range(0, n_windows, 8):
        rows = range(w, min(w + 8, n_windows))
        x = torch.stack([stream[r * seq : r * seq + seq] for r in rows])
        y = torch.stack([stream[r * seq + 1 : r * seq + seq + 1] for r in rows])
        logits, _, c = model(x)
        nll_total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="sum").item()
        tokens += y.numel()
        n_bytes += int(byte_len[y].sum())
        counts = c if counts is None else counts + c
    model.train()
    load = (counts.double() / counts.sum(-1, keepdim=True)).tolist()
    loss = nll_total / tokens
    return {
        "loss": loss,
        "perplexity": math.exp(loss),
        "bits_per_byte": nll_total / math.log(2) / n_bytes,
        "tokens": tokens,
        "bytes": n_bytes,
        "expert_load": load,
    }


def lr_at(step: int, cfg: argparse.Namespace) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def save_atomic(obj, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".partial")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", type=Path, required=True, help="node_modules/@stdlib of the npm install")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--vocab", type=int, default=4096)
    p.add_argument("--n-embd", type=int, default=256)
    p.add_argument("--n-layer", type=int, default=4)
    p.add_argument("--n-head", type=int, default=4)
    p.add_argument("--n-head-kv", type=int, default=2)
    p.add_argument("--n-expert", type=int, default=16)
    p.add_argument("--n-expert-used", type=int, default=2)
    p.add_argument("--n-ff-exp", type=int, default=128)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--balance-coef", type=float, default=0.01)
    p.add_argument("--eval-every", type=int, default=200)
    p.add_argument("--ckpt-every", type=int, default=100)
    p.add_argument("--max-minutes", type=float, default=1e9, help="stop early (checkpoint kept) after this long")
    p.add_argument("--final-eval-windows", type=int, default=1_000_000)
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "data").mkdir(exist_ok=True)

    docs = read_documents(args.data)
    train_docs, val_docs = split_documents(docs)
    (args.out / "data" / "val.txt").write_text(f"\n{EOT}\n".join(val_docs), encoding="utf-8")
    t0 = time.time()
    tok = train_tokenizer(train_docs, args.vocab)
    tok.save(str(args.out / "tokenizer.json"))
    train_ids = encode_stream(tok, train_docs)
    val_ids = encode_stream(tok, val_docs)
    byte_len = token_byte_lengths(tok)
    print(
        f"docs train={len(train_docs)} val={len(val_docs)} tokens train={train_ids.numel()} val={val_ids.numel()}"
        f" vocab={tok.get_vocab_size()} tokenizer+encode {time.time() - t0:.1f}s",
        flush=True,
    )

    cfg = {
        "n_vocab": tok.get_vocab_size(),
        "n_embd": args.n_embd,
        "n_layer": args.n_layer,
        "n_head": args.n_head,
        "n_head_kv": args.n_head_kv,
        "head_dim": args.n_embd // args.n_head,
        "n_expert": args.n_expert,
        "n_expert_used": args.n_expert_used,
        "n_ff_exp": args.n_ff_exp,
        "n_ctx": args.seq,
        "rope_base": 10000.0,
        "rms_eps": 1e-6,
        "eot_id": tok.token_to_id(EOT),
        "special_tokens": {t: tok.token_to_id(t) for t in SPECIAL_TOKENS},
    }
    (args.out / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")

    gen = torch.Generator().manual_seed(args.seed)
    model = MoeLM(cfg)
    model.init_weights(gen)
    n_params = sum(p.numel() for p in model.parameters())
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr,
        betas=(0.9, 0.95),
    )
    start_step = 0
    ckpt_path = args.out / "ckpt.pt"
    log_path = args.out / "train_log.tsv"
    if ckpt_path.exists():
        state = torch.load(ckpt_path)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        gen.set_state(state["gen"])
        start_step = state["step"]
        print(f"resumed at step {start_step}", flush=True)
    else:
        log_path.write_text("step\ttokens\ttrain_loss\tbalance\tlr\tval_loss\tseconds\n")
    print(f"params={n_params} cfg={json.dumps(cfg)}", flush=True)

    n_windows = (train_ids.numel() - 1) // args.seq
    started = time.time()
    step = start_step
    running = None
    for step in range(start_step, args.steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, args)
        starts = torch.randint(0, n_windows, (args.batch,), generator=gen) * args.seq
        starts = starts + torch.randint(0, args.seq, (args.batch,), generator=gen)
        starts = starts.clamp(max=train_ids.numel() - args.seq - 1)
        x = torch.stack([train_ids[s : s + args.seq] for s in starts.tolist()])
        y = torch.stack([train_ids[s + 1 : s + args.seq + 1] for s in starts.tolist()])
        logits, balance, _ = model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        (loss + args.balance_coef * balance).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        running = loss.item() if running is None else 0.95 * running + 0.05 * loss.item()
        done = step + 1
        elapsed = time.time() - started
        val_loss = ""
        if done % args.eval_every == 0:
            val_loss = f"{evaluate(model, val_ids, args.seq, 16, byte_len)['loss']:.4f}"
        if done % 10 == 0 or val_loss:
            with log_path.open("a") as f:
                f.write(
                    f"{done}\t{done * args.batch * args.seq}\t{running:.4f}\t{balance.item():.4f}"
                    f"\t{lr_at(step, args):.6f}\t{val_loss}\t{elapsed:.1f}\n"
                )
            print(f"step {done} loss {running:.4f} balance {balance.item():.3f} val {val_loss} {elapsed:.0f}s", flush=True)
        out_of_time = elapsed > args.max_minutes * 60
        if done % args.ckpt_every == 0 or done == args.steps or out_of_time:
            save_atomic({"model": model.state_dict(), "opt": opt.state_dict(), "gen": gen.get_state(), "step": done}, ckpt_path)
        if out_of_time:
            print(f"stopping at step {done}: time budget of {args.max_minutes} min reached", flush=True)
            break

    final = evaluate(model, val_ids, args.seq, args.final_eval_windows, byte_len)
    final.update({"steps": step + 1, "train_seconds": time.time() - started, "params": n_params, "threads": args.threads})
    (args.out / "metrics.json").write_text(json.dumps(final, indent=2) + "\n")
    print(f"final val loss {final['loss']:.4f} ppl {final['perplexity']:.2f} bpb {final['bits_per_byte']:.4f}", flush=True)


if __name__ == "__main__":
    main()
