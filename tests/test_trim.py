"""Vocabulary trimming (models/trim.py, prepare_model source: trim, publish trim=true) on tiny
models: an XLM-R-shaped Unigram tokenizer (the real encoder's kind) and the WordPiece fixture."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kazakh_ner_stance.config import compose
from kazakh_ner_stance.data.download import sha256_file
from kazakh_ner_stance.errors import KnsError
from kazakh_ner_stance.models import trim as T
from kazakh_ner_stance.models import trim_corpus

FIXTURES = Path(__file__).parent / "fixtures"
CORPUS = FIXTURES / "ner_tiny" / "IOB2_valid.txt"


def _corpus_texts() -> list[str]:
    return [" ".join(ws) for ws in trim_corpus.read_corpus_file(CORPUS).words]


@pytest.fixture(scope="module")
def unigram_encoder(tmp_path_factory) -> Path:
    from kazakh_ner_stance.testing import save_tiny_unigram_encoder

    return save_tiny_unigram_encoder(tmp_path_factory.mktemp("uni") / "full", _corpus_texts())


@pytest.fixture(scope="module")
def trimmed(unigram_encoder, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("uni_trim") / "trimmed"
    out.mkdir()
    held = out.parent / "held.txt"
    # 中 has a piece in the full vocabulary but is neither in the corpus nor in keep_chars.
    held.write_text("Астана 中 қаласы\n", encoding="utf-8")
    record = T.trim_model(unigram_encoder, out, [CORPUS], keep_chars="", held_aside=[held], verify_sentences=40)
    return out, record


def test_trimmed_tiny_model_is_the_same_function_on_its_corpus(unigram_encoder, trimmed):
    import torch
    from transformers import AutoModel, AutoTokenizer

    out, record = trimmed
    full_tok, trim_tok = AutoTokenizer.from_pretrained(unigram_encoder), AutoTokenizer.from_pretrained(out)
    assert len(trim_tok) == record["kept"] < len(full_tok) // 2
    v = record["verification"]
    assert v["corpus_tokenization"] == {"sentences": 60, "different": 0, "identical_share": 1.0}
    assert v["hidden_states"]["max_abs_difference"] == 0.0 and v["hidden_states"]["token_positions"] > 300
    # Independently of the built-in check: same pieces and same hidden states, specials included.
    full = AutoModel.from_pretrained(unigram_encoder, add_pooling_layer=False).eval()
    small = AutoModel.from_pretrained(out, add_pooling_layer=False).eval()
    assert small.get_input_embeddings().weight.shape[0] == record["kept"]
    for words in trim_corpus.read_corpus_file(CORPUS).words[:20]:
        a = full_tok(words, is_split_into_words=True, return_tensors="pt")
        b = trim_tok(words, is_split_into_words=True, return_tensors="pt")
        assert full_tok.convert_ids_to_tokens(a["input_ids"][0]) == trim_tok.convert_ids_to_tokens(b["input_ids"][0])
        with torch.no_grad():
            assert torch.equal(full(**a).last_hidden_state, small(**b).last_hidden_state)
    for name in ("bos", "eos", "pad", "unk"):  # the special ids keep their XLM-R places
        assert getattr(trim_tok, f"{name}_token_id") == getattr(full_tok, f"{name}_token_id")
    assert trim_tok.convert_ids_to_tokens(trim_tok.mask_token_id) == "<mask>"
    assert json.loads((out / "config.json").read_text())["vocab_size"] == record["kept"]
    prov = json.loads((out / "kns_provenance.json").read_text())
    assert prov["source"] == "trim" and prov["corpora"][0]["sha256"] == sha256_file(CORPUS)
    assert prov["trimmed_from"]["tokenizer_pieces"] == len(full_tok)


def test_unseen_character_falls_back_to_unk_and_is_reported(trimmed):
    from transformers import AutoTokenizer

    out, record = trimmed
    held = record["verification"]["held_aside"]
    assert held["sentences"] == 1 and held["identical"] == 0
    assert [c["codepoint"] for c in held["unk_fallback_chars"]] == ["U+4E2D"]
    tok = AutoTokenizer.from_pretrained(out)
    ids = tok("Астана 中")["input_ids"]
    assert tok.unk_token_id in ids
    est = record["verification"]["held_aside_estimate"]
    # Pure tokenizer arithmetic on the fixed corpus (the held-out sentences are picked by a seeded
    # hash): 5 of the 60 sentences held out, 4 tokenize identically, one needs the digit "4".
    assert (est["sentences"], est["identical"], est["share_held_out"]) == (5, 4, 0.05)
    assert est["identical_share"] == est["identical"] / est["sentences"] == 0.8
    assert [c["char"] for c in est["unk_fallback_chars"]] == ["4"]


def test_a_dropped_piece_that_changes_a_segmentation_is_caught(unigram_encoder, tmp_path, monkeypatch):
    """Selection is where exactness comes from; a selection that misses a used piece must fail
    the verification, and nothing is written as a usable checkpoint."""
    real = T.select_pieces

    def lossy(tv, tok, corpora, keep_chars="", full_ids=None):
        sel = real(tv, tok, corpora, keep_chars, full_ids)
        word_pieces = [i for i in sel.old_ids if tv.pieces[i].startswith("▁") and len(tv.pieces[i]) > 3]
        sel.old_ids = [i for i in sel.old_ids if i != word_pieces[0]]
        return sel

    monkeypatch.setattr(T, "select_pieces", lossy)
    out = tmp_path / "bad"
    out.mkdir()
    with pytest.raises(KnsError, match="differs from the full one on"):
        T.trim_model(unigram_encoder, out, [CORPUS], verify_sentences=4, held_aside_share=0)


def test_wordpiece_encoder_trims_too(tiny_encoder, tmp_path):
    out = tmp_path / "wp"
    out.mkdir()
    rec = T.trim_model(tiny_encoder, out, [CORPUS], keep_chars="", verify_sentences=8, held_aside_share=0)
    assert rec["verification"]["corpus_tokenization"]["different"] == 0
    assert rec["verification"]["hidden_states"]["max_abs_difference"] == 0.0
    assert rec["kept"] < rec["trimmed_from"]["tokenizer_pieces"]


def test_corpus_formats_and_errors(tmp_path):
    import zipfile

    tsv = tmp_path / "ru.csv"
    tsv.write_text("sentence\tentity\tlabel\nМосква столица\tМосква\t0\n", encoding="utf-8")
    assert trim_corpus.read_corpus_file(tsv).texts == ["Москва столица", "Москва"]
    z = tmp_path / "kz.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("a.csv", "custom_id,text,label\n1,Жақсы өнім,1\n")
    assert trim_corpus.read_corpus_file(z).texts == ["Жақсы өнім"]
    plain = tmp_path / "mine.txt"
    plain.write_text("бірінші сөйлем\n\nекінші\n", encoding="utf-8")
    assert trim_corpus.read_corpus_file(plain).texts == ["бірінші сөйлем", "екінші"]
    bad = tmp_path / "bad.tsv"
    bad.write_text("id\tsentence_text\n1\tx\n", encoding="utf-8")
    with pytest.raises(KnsError, match=r"bad.tsv: a table without a text column"):
        trim_corpus.read_corpus_file(bad)
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("ok\nfa\xe7ade\n".encode("latin-1"))
    with pytest.raises(KnsError, match=r"latin1.txt:2: not UTF-8"):
        trim_corpus.read_corpus_file(latin1)
    with pytest.raises(KnsError, match="does not exist"):
        trim_corpus.read_corpora([tmp_path / "missing"])
    empty = tmp_path / "empty.txt"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(KnsError, match="no text found"):
        trim_corpus.read_corpus_file(empty)


def test_prepare_model_verb_trims_and_is_idempotent(unigram_encoder, tmp_path, capsys):
    from kazakh_ner_stance.models.prepare import run_prepare_model
    from kazakh_ner_stance.models.provenance import read_provenance

    out = tmp_path / "models" / "trimmed"
    ov = ["model=e5_small_trimmed", f"model.base={unigram_encoder}", f"out_dir={out}", f"trim.corpus=[{CORPUS}]",
          "trim.verify_sentences=8", "trim.held_aside_share=0.1"]
    run_prepare_model(compose("prepare_model", ov))
    text = capsys.readouterr().out
    assert "trimmed vocabulary:" in text and "identical to the full tokenizer" in text and "max abs difference 0" in text
    assert read_provenance(out)["source"] == "trim"
    run_prepare_model(compose("prepare_model", ov))
    assert "already prepared" in capsys.readouterr().out
    with pytest.raises(KnsError, match="is not prepared"):
        run_prepare_model(compose("prepare_model", ["model=e5_small_trimmed", f"model.base={tmp_path / 'none'}",
                                                    f"out_dir={tmp_path / 'x'}", f"trim.corpus=[{CORPUS}]"]))


def test_half_precision_trim(unigram_encoder, tmp_path):
    from safetensors import safe_open

    out = tmp_path / "half"
    out.mkdir()
    rec = T.trim_model(unigram_encoder, out, [CORPUS], dtype="float16", verify_sentences=8, held_aside_share=0)
    with safe_open(str(out / "model.safetensors"), framework="pt") as f:
        assert {str(f.get_tensor(k).dtype) for k in f.keys()} == {"torch.float16"}
    assert 0 < rec["verification"]["hidden_states"]["max_abs_difference"] < 0.05


def test_trimmed_checkpoint_round_trip_train_evaluate_predict_publish(trimmed, tiny_ner_dataset, tmp_path, capsys,
                                                                     monkeypatch):
    """A trimmed encoder goes through training, evaluation, prediction and a publish dry run
    unchanged; publish trim=true trims an untrimmed checkpoint and the card says so."""
    import huggingface_hub.constants as hf_constants

    from kazakh_ner_stance.evaluation.run import run_evaluate
    from kazakh_ner_stance.predict import run_predict
    from kazakh_ner_stance.publish import run_publish
    from kazakh_ner_stance.training.train import run_train

    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(hf_constants, "HF_TOKEN_PATH", str(tmp_path / "no-login" / "token"))
    enc, record = trimmed
    run = tmp_path / "run"
    run_train(compose("train", [
        "model=local", f"model.path={enc}", f"data.dataset_dir={tiny_ner_dataset}", "trainer=debug",
        f"run_dir={run}", f"paths.artifacts_dir={tmp_path / 'a'}", "task.max_length=24", "task.window_overlap=6",
    ]))
    info = json.loads((run / "model" / "kns_training.json").read_text())
    assert info["base_model_provenance"]["source"] == "trim"
    ev = tmp_path / "eval"
    run_evaluate(compose("evaluate", [f"checkpoint={run / 'model'}", f"dataset_dir={tiny_ner_dataset}", "split=test",
                                      f"out_dir={ev}", "bootstrap.n=20", f"paths.artifacts_dir={tmp_path / 'a'}"]))
    assert json.loads((ev / "metrics.json").read_text())["micro"]["f1"] is not None
    src = tmp_path / "in.txt"
    src.write_text("Астана қаласы 中\n", encoding="utf-8")
    pred = tmp_path / "pred.jsonl"
    run_predict(compose("predict", [f"checkpoint={run / 'model'}", f"input={src}", f"output={pred}"]))
    assert json.loads(pred.read_text().splitlines()[0])["text"] == "Астана қаласы 中"
    capsys.readouterr()
    result = run_publish(compose("publish", [
        "repo_id=kns-test/ner-trimmed", f"checkpoint={run / 'model'}", f"metrics={ev / 'metrics.json'}",
        f"out_dir={tmp_path / 'release'}", f"paths.artifacts_dir={tmp_path / 'a'}", "dry_run=true",
        "base_model=intfloat/multilingual-e5-small",
    ]))
    card = (Path(result["folder"]) / "README.md").read_text()
    assert "vocabulary-trimmed" in card and "Vocabulary trimmed** before fine-tuning" in card


def test_publish_trim_true_trims_the_release(tiny_ner_dataset, tiny_encoder, tmp_path, monkeypatch, capsys):
    import huggingface_hub.constants as hf_constants
    from safetensors import safe_open

    from kazakh_ner_stance.evaluation.run import run_evaluate
    from kazakh_ner_stance.publish import run_publish
    from kazakh_ner_stance.training.train import run_train

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(hf_constants, "HF_TOKEN_PATH", str(tmp_path / "no-login" / "token"))
    run = tmp_path / "run"
    run_train(compose("train", [
        "model=local", f"model.path={tiny_encoder}", f"data.dataset_dir={tiny_ner_dataset}", "trainer=debug",
        f"run_dir={run}", f"paths.artifacts_dir={tmp_path / 'a'}", "task.max_length=24", "task.window_overlap=6",
    ]))
    ev = tmp_path / "eval"
    run_evaluate(compose("evaluate", [f"checkpoint={run / 'model'}", f"dataset_dir={tiny_ner_dataset}", "split=test",
                                      f"out_dir={ev}", "bootstrap.n=20", f"paths.artifacts_dir={tmp_path / 'a'}"]))
    result = run_publish(compose("publish", [
        "repo_id=kns-test/ner-tiny-trimmed", f"checkpoint={run / 'model'}", f"metrics={ev / 'metrics.json'}",
        f"out_dir={tmp_path / 'release'}", f"paths.artifacts_dir={tmp_path / 'a'}", "dry_run=true", "trim=true",
        f"trim_options.corpus=[{CORPUS}]", "trim_options.verify_sentences=8", "trim_options.held_aside_share=0",
        "trim_options.keep_chars=''",
        "base_model=intfloat/multilingual-e5-small",
    ]))
    folder = Path(result["folder"])
    out = capsys.readouterr().out
    assert "trimmed vocabulary:" in out and "(verified)" in out
    record = json.loads((folder / "kns_trim.json").read_text())
    assert record["trimmed_at"] == "release" and "kns_trim.json" in result["files"]
    with safe_open(str(folder / "model.safetensors"), framework="pt") as f:
        rows = f.get_tensor("bert.embeddings.word_embeddings.weight").shape[0]
    assert rows == record["kept"] < record["trimmed_from"]["tokenizer_pieces"]
    card = (folder / "README.md").read_text()
    assert "vocabulary-trimmed" in card and "at release (`publish.py trim=true`)" in card
