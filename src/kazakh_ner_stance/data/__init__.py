"""Data: IOB2 reading and validation, normalisation, the dataset builder, tokenisation.

Kept import-light: `import kazakh_ner_stance.data` does not import `datasets` or torch."""
