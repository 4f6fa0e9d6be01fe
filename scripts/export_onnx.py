"""`python scripts/export_onnx.py checkpoint=DIR [out_dir=DIR]`: see configs/export_onnx.yaml."""

from kazakh_ner_stance.onnx_export import main

if __name__ == "__main__":
    main()
