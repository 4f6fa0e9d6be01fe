"""`python scripts/export_onnx.py checkpoint=DIR [out_dir=DIR]`: see configs/export_onnx.yaml."""

from kazakh_ner_stance.cli import export_onnx_main

if __name__ == "__main__":
    export_onnx_main()
