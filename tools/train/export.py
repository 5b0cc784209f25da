"""Export the trained demo model to GGUF (arch `qwen3moe`) and write PyTorch reference logits.

Pinned environment: tools/train/README.md (gguf==0.19.0, tokenizers==0.23.3, Debian python3-torch).

Reads --run (the train.py output directory) and writes into --out:
  edgemoe-demo-f32.gguf    every tensor F32 (for the tight comparison with llama.cpp)
  edgemoe-demo-q8_0.gguf   matrices Q8_0 (gguf-py's quantizer); norms and router F32 (the shipped file)
  reference.json           held-out token sequences, tokenizer test strings with their ids, file names
  reference_logits.f32     PyTorch logits for those sequences, little-endian f32, [seq][pos][vocab]
  eval.txt                 held-out documents (about 64 KiB, whole sentences) for perplexity checks
  calibration.txt          training documents (about 64 KiB, whole sentences) for bitwidth planning
"""

import argparse
import json
from pathlib import Path

import gguf
import numpy as np
import torch
from tokenizers import Tokenizer

from model import MoeLM
from train import read_documents, split_documents, token_byte_lengths

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
TOKENIZER_STRINGS = [
    "Call me Ishmael.",
    "Fellow-Citizens of the Senate and of the House of Representatives:",
    "  two  spaces,\ttab and\n\nblank line  ",
    "In 1862, $3,000,000 was spent; don't you think WE'LL need more?",
    "naïve café — “quoted” ’tis",
    "<|im_start|>user\nHello<|im_end|>\n<|endoftext|>",
    "whale-ship Pequod!!! ...and 12345 digits",
]
N_SEQUENCES = 3
SEQ_LEN = 64
TEXT_SAMPLE_BYTES = 64 * 1024
EVAL_WINDOW = 256  # eval.txt is scored in non-overlapping windows; the first token of each is context only


def text_sample(docs: list[str], stride: int) -> str:
    """The opening of every `stride`-th document, each cut at a sentence end, about TEXT_SAMPLE_BYTES in all."""
    picked = docs[::stride]
    per_doc = TEXT_SAMPLE_BYTES // len(picked)
    parts = []
    for doc in picked:
        head = doc.encode()[:per_doc].decode(errors="ignore")
        cut = head.rfind(". ")
        parts.append(head[: cut + 1] if cut > 0 else head)
    return "\n\n".join(parts) + "\n"


@torch.no_grad()
def score_text(model: MoeLM, tok: Tokenizer, text: str) -> dict:
    """Perplexity and bits per byte of `text` (the windowing verify_llama.ts repeats with llama.cpp)."""
    ids = tok.encode(text, add_special_tokens=False).ids
    byte_len = token_byte_lengths(tok)
    nll, predicted, n_bytes = 0.0, 0, 0
    for start in range(0, len(ids) - 1, EVAL_WINDOW):
        window = torch.tensor([ids[start : start + EVAL_WINDOW]], dtype=torch.long)
        logits, _, _ = model(window)
        logp = torch.log_softmax(logits[0, :-1].double(), dim=-1)
        targets = window[0, 1:]
        nll -= logp.gather(1, targets[:, None]).sum().item()
        predicted += targets.numel()
        n_bytes += int(byte_len[targets].sum())
    return {
        "window": EVAL_WINDOW,
        "tokens": len(ids),
        "predicted": predicted,
        "bytes": n_bytes,
        "perplexity": float(np.exp(nll / predicted)),
        "bits_per_byte": nll / np.log(2) / n_bytes,
    }


def gguf_tensors(model: MoeLM) -> list[tuple[str, np.ndarray]]:
    """Canonical GGUF names; numpy shapes are the reverse of ggml's ne (PyTorch's [out, in] order)."""
    out = [("token_embd.weight", model.embed), ("output_norm.weight", model.out_norm)]
    for i, layer in enumerate(model.layers):
        out += [
            (f"blk.{i}.attn_norm.weight", layer.attn_norm),
            (f"blk.{i}.attn_q.weight", layer.wq),
            (f"blk.{i}.attn_k.weight", layer.wk),
            (f"blk.{i}.attn_v.weight", layer.wv),
            (f"blk.{i}.attn_output.weight", layer.wo),
            (f"blk.{i}.attn_q_norm.weight", layer.q_norm),
            (f"blk.{i}.attn_k_norm.weight", layer.k_norm),
            (f"blk.{i}.ffn_norm.weight", layer.ffn_norm),
            (f"blk.{i}.ffn_gate_inp.weight", layer.router),
            (f"blk.{i}.ffn_gate_exps.weight", layer.gate),
            (f"blk.{i}.ffn_up_exps.weight", layer.up),
            (f"blk.{i}.ffn_down_exps.weight", layer.down),
        ]
    return [(name, t.detach().float().numpy().copy()) for name, t in out]


def write_gguf(path: Path, cfg: dict, tok: Tokenizer, model: MoeLM, quantize: bool) -> None:
    w = gguf.GGUFWriter(str(path), "qwen3moe")
    w.add_name("edgemoe-demo")
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0 if quantize else gguf.LlamaFileType.ALL_F32)
    w.add_context_length(cfg["n_ctx"])
    w.add_embedding_length(cfg["n_embd"])
    w.add_block_count(cfg["n_layer"])
    w.add_feed_forward_length(cfg["n_ff_exp"] * cfg["n_expert_used"])
    w.add_head_count(cfg["n_head"])
    w.add_head_count_kv(cfg["n_head_kv"])
    w.add_key_length(cfg["head_dim"])
    w.add_value_length(cfg["head_dim"])
    w.add_rope_dimension_count(cfg["head_dim"])
    w.add_rope_freq_base(cfg["rope_base"])
    w.add_layer_norm_rms_eps(cfg["rms_eps"])
    w.add_expert_count(cfg["n_expert"])
    w.add_expert_used_count(cfg["n_expert_used"])
    w.add_expert_feed_forward_length(cfg["n_ff_exp"])

    spec = json.loads(tok.to_str())
    vocab = tok.get_vocab()
    tokens = [""] * len(vocab)
    for piece, idx in vocab.items():
        tokens[idx] = piece
    special = set(cfg["special_tokens"].values())
    types = [gguf.TokenType.CONTROL if i in special else gguf.TokenType.NORMAL for i in range(len(tokens))]
    merges = [m if isinstance(m, str) else " ".join(m) for m in spec["model"]["merges"]]
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(cfg["eot_id"])
    w.add_eos_token_id(cfg["eot_id"])
    w.add_pad_token_id(cfg["eot_id"])
    w.add_add_bos_token(False)
    w.add_chat_template(CHAT_TEMPLATE)

    for name, data in gguf_tensors(model):
        if quantize and data.ndim >= 2 and "ffn_gate_inp" not in name:
            q = gguf.quants.quantize(data, gguf.GGMLQuantizationType.Q8_0)
            w.add_tensor(name, q, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        else:
            w.add_tensor(name, data)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--run", type=Path, required=True, help="train.py --out directory")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--data", type=Path, required=True, help="node_modules/@stdlib of the npm install")
    args = p.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)

    cfg = json.loads((args.run / "config.json").read_text())
    tok = Tokenizer.from_file(str(args.run / "tokenizer.json"))
    model = MoeLM(cfg)
    model.load_state_dict(torch.load(args.run / "ckpt.pt")["model"])
    model.eval()

    f32_path = args.out / "edgemoe-demo-f32.gguf"
    q8_path = args.out / "edgemoe-demo-q8_0.gguf"
    write_gguf(f32_path, cfg, tok, model, quantize=False)
    write_gguf(q8_path, cfg, tok, model, quantize=True)

    train_docs, val_docs = split_documents(read_documents(args.data))
    eval_text = text_sample(val_docs, 1)
    (args.out / "eval.txt").write_text(eval_text, encoding="utf-8")
    (args.out / "calibration.txt").write_text(text_sample(train_docs, 17), encoding="utf-8")

    # Held-out sequences: the first SEQ_LEN tokens of the first N_SEQUENCES validation documents.
    sequences = [tok.encode(d, add_special_tokens=False).ids[:SEQ_LEN] for d in val_docs[:N_SEQUENCES]]
    with torch.no_grad():
        logits, _, _ = model(torch.tensor(sequences, dtype=torch.long))
    logits.numpy().astype("<f4").tofile(args.out / "reference_logits.f32")
    reference = {
        "f32_gguf": f32_path.name,
        "q8_0_gguf": q8_path.name,
        "n_vocab": cfg["n_vocab"],
        "sequences": sequences,
        "tokenizer_strings": [{"text": s, "ids": tok.encode(s, add_special_tokens=False).ids} for s in TOKENIZER_STRINGS],
        "eval_torch": score_text(model, tok, eval_text),
    }
    (args.out / "reference.json").write_text(json.dumps(reference, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {f32_path} ({f32_path.stat().st_size} bytes), {q8_path} ({q8_path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
