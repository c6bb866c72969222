"""The data layer: the tokenizer, the corpus and the synthetic stories it falls back on."""
