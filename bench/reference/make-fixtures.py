"""Writes crates/hearth-local/tests/fixtures/reference.json: what the reference engines produce
for a fixed corpus, which Hearth's built-in models must reproduce.

- token ids from llama.cpp (llama-cpp-python) for the chat model's tokenizer;
- prompt ids of conversations rendered with the model's own chat template (Jinja2, as
  Hugging Face's apply_chat_template renders it) and tokenized with control tokens parsed;
- sentence embeddings from sentence-transformers.

Run: python bench/reference/make-fixtures.py MODELS_DIR  (with the reference virtualenv's python:
`$(bash bench/reference/setup.sh) bench/reference/make-fixtures.py hearth-data/models`).
"""
import json
import os
import sys

import jinja2
from llama_cpp import Llama
from sentence_transformers import SentenceTransformer

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "..", "crates", "hearth-local", "tests", "fixtures", "reference.json")
CHAT = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBED = "all-MiniLM-L6-v2"

CORPUS = [
    "Hello, world!",
    " leading space and  double  spaces ",
    "Ünïcödé: café, naïve, 日本語のテキスト, Ελληνικά, русский текст",
    "emoji 🔥🎉 family 👩‍👩‍👧 flag 🇫🇷 skin 👍🏽",
    "fn main() {\n    println!(\"{}\", 1 + 2);\n}\n",
    "def f(x):\n\treturn x ** 2  # square\n",
    "numbers 1234567890 3.14159 -1e-9 0x1F",
    "<|im_start|>user\nhi<|im_end|>",
    "\t\ttabs\n\n\nnewlines   trailing",
    "don't won't it's I'm we'll they'd",
    "",
]

CONVERSATIONS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Name three colours."},
        {"role": "assistant", "content": "Red, green, blue."},
        {"role": "user", "content": "And three more, in French: été 🌞?"},
    ],
]

SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "Ünïcödé text with emoji 🔥 and 日本語.",
    "fn main() { println!(\"hello\"); }",
    "short",
    " ".join(["A long sentence that goes on and on to pass the truncation limit."] * 40),
    "",
]


def main():
    models = sys.argv[1]
    llm = Llama(model_path=os.path.join(models, CHAT), vocab_only=True, verbose=False)
    tokens = [
        {"text": t, "special": special, "ids": llm.tokenize(t.encode(), add_bos=False, special=special)}
        for t in CORPUS
        for special in (False, True)
    ]
    template = llm.metadata["tokenizer.chat_template"]
    env = jinja2.Environment(loader=jinja2.BaseLoader(), trim_blocks=True, lstrip_blocks=True)
    bos = llm.detokenize([llm.token_bos()], special=True).decode()
    eos = llm.detokenize([llm.token_eos()], special=True).decode()
    prompts = []
    for messages in CONVERSATIONS:
        text = env.from_string(template).render(
            messages=messages, add_generation_prompt=True, bos_token=bos, eos_token=eos
        )
        prompts.append({"messages": messages, "text": text, "ids": llm.tokenize(text.encode(), add_bos=False, special=True)})
    st = SentenceTransformer(os.path.join(models, EMBED), device="cpu")
    vectors = st.encode(SENTENCES, normalize_embeddings=True).tolist()
    with open(OUT, "w") as f:
        json.dump(
            {
                "chat_model": CHAT,
                "embedding_model": EMBED,
                "tokens": tokens,
                "prompts": prompts,
                "embeddings": [{"text": s, "vector": v} for s, v in zip(SENTENCES, vectors)],
            },
            f,
            ensure_ascii=False,
        )
    print("wrote", os.path.normpath(OUT))


if __name__ == "__main__":
    main()
