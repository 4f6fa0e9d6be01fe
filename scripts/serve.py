"""`python scripts/serve.py checkpoint=DIR [stance_checkpoint=DIR] [port=8000]`: see configs/serve.yaml."""

from kazakh_ner_stance.cli import serve_main

if __name__ == "__main__":
    serve_main()
