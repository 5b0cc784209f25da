"""Export the trained demo model to GGUF (arch `qwen3moe`) and write PyTorch reference logits.

Pinned environment: tools/train/README.md (gguf==0.19.0, tokenizers==0.23.3, Debian python3-torch).

Reads --run (the train.py output directory) and writes into --out:
  edgemoe-demo-f32.gguf    every tensor F32 (for the tight comparison with llama.cpp)
  edgemoe-demo-q8_0.gguf   matrices Q8_0 (gguf-py's quantizer); norms and router F32 (the shipped file)
  reference.json           held-out token sequences, tokenizer test strings with their ids, file names
  reference_logits.f32     PyTorch logits for those sequences, little-endian f32, [seq][pos][vocab]
"""

import argparse
import json
from pathlib import Path

import gguf
import numpy as np
import torch
from tokenizers import Tokenizer

from model import MoeLM

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

    # Held-out sequences: the first SEQ_LEN tokens of the first N_SEQUENCES validation documents.
    val_docs = (args.run / "data" / "val.txt").read_text(encoding="utf-8").split("\n<|endoftext|>\n")
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
    }
    (args.out / "reference.json").write_text(json.dumps(reference, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {f32_path} ({f32_path.stat().st_size} bytes), {q8_path} ({q8_path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
