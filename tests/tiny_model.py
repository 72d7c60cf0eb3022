"""A tiny, randomly initialised causal LM with a real BPE tokenizer and a chat template, built offline."""

from __future__ import annotations

from pathlib import Path

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "I'm sorry, but I can't help with that request.",
    "Sure, here is a helpful answer about your question.",
    "What is the capital of France? Paris is the capital of France.",
    "How do I bake bread? Mix flour, water, yeast and salt, then knead and bake.",
    "<|user|> <|assistant|> <|system|> yes no maybe true false I don't know",
] * 20

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def build_tiny_model(path: str | Path, seed: int = 0, layers: int = 2, hidden: int = 32, chat_template: bool = True) -> Path:
    """Save tokenizer + model to ``path`` and return it (loadable with ``from_pretrained(path)``)."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<pad>", "<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(CORPUS, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    if chat_template:
        fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(path)
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(fast), hidden_size=hidden, intermediate_size=hidden * 2, num_hidden_layers=layers,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512,
                      bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id,
                      tie_word_embeddings=False)
    model = LlamaForCausalLM(cfg)
    model.save_pretrained(path)
    return path


def build_tiny_reward_model(path: str | Path, seed: int = 0, hidden: int = 32, pad_token: bool = True) -> Path:
    """A randomly initialised Llama sequence classifier with one output (a reward model's shape) and the
    tiny model's tokenizer and chat template; ``pad_token=False`` saves a config that names no pad token."""
    import torch
    from transformers import LlamaConfig, LlamaForSequenceClassification, PreTrainedTokenizerFast

    path = Path(path)
    build_tiny_model(path / "_lm", seed=seed, layers=1, hidden=8)  # for its tokenizer
    fast = PreTrainedTokenizerFast.from_pretrained(path / "_lm")
    fast.save_pretrained(path)
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(fast), hidden_size=hidden, intermediate_size=hidden * 2, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512, num_labels=1,
                      bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id,
                      pad_token_id=fast.pad_token_id if pad_token else None)
    model = LlamaForSequenceClassification(cfg)
    with torch.no_grad():  # a visible spread of rewards (the default init gives a near-zero head)
        model.score.weight.normal_(0.0, 1.0)
    model.save_pretrained(path)
    import shutil

    shutil.rmtree(path / "_lm")
    return path
