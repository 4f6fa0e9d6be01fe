"""Task-specific encoding, decoding and inference (ner, stance, joint)."""
