"""The page in a real headless Chromium: it types the README example, submits, and finds the
highlighted entity spans (with their types) and the stance colours in the DOM; it saves a
screenshot. Needs Debian's `chromium` and `chromium-driver` (.ci/run installs them and sets
KNS_REQUIRE_BROWSER=1, so there a missing browser fails instead of skipping)."""

from __future__ import annotations

import os
import struct

import pytest

pytest.importorskip("fastapi", reason="the server needs the `serve` extra (fastapi, uvicorn, httpx)")

from kazakh_ner_stance.predict import Predictor  # noqa: E402
from kazakh_ner_stance.serve import ServeLimits, create_app  # noqa: E402
from kazakh_ner_stance.serve.browser import analyse_in_page, background_server, find_chromium  # noqa: E402

EXAMPLE = "Қазақстан Президенті Қасым-Жомарт Тоқаев Бейбітшілік кеңесін қолдады."
# The tiny NER model is random; this lexicon tagger makes the entities known, so the test can
# say which chips the page must draw. The stance model is the real tiny checkpoint.
LEXICON = {"Қазақстан": "B-GPE", "Қасым-Жомарт": "B-PERSON", "Тоқаев": "I-PERSON", "Бейбітшілік": "B-ORGANISATION",
           "кеңесін": "I-ORGANISATION"}
STANCE_RGB = {"FAVOR": "rgb(26, 127, 55)", "AGAINST": "rgb(207, 34, 46)", "NONE": "rgb(140, 149, 159)"}


def _browser_or_skip():
    browser, driver = find_chromium()
    if browser and driver:
        try:
            import selenium  # noqa: F401
        except ImportError:
            browser = None
    if not (browser and driver):
        why = ("headless Chromium not available (needs the chromium and chromium-driver Debian packages and "
               "selenium; .ci/run installs them)")
        if os.environ.get("KNS_REQUIRE_BROWSER") == "1":
            pytest.fail(why + ", but KNS_REQUIRE_BROWSER=1")
        pytest.skip(why)


def _lexicon_tagger(model, tokenizer, tokens_list, **kwargs):
    tags = [[LEXICON.get(w, "O") for w in words] for words in tokens_list]
    scores = [[0.9] * len(words) for words in tokens_list]
    return (tags, scores) if kwargs.get("return_scores") else tags


def test_page_in_headless_chromium(tiny_ner_checkpoint, tiny_stance_checkpoint, monkeypatch, tmp_path):
    _browser_or_skip()
    import kazakh_ner_stance.tasks.ner as ner
    from kazakh_ner_stance.serve.browser import headless_chromium

    monkeypatch.setattr(ner, "predict_word_tags", _lexicon_tagger)
    predictor = Predictor.from_pretrained(tiny_ner_checkpoint, stance_checkpoint=tiny_stance_checkpoint)
    expected = predictor(EXAMPLE)
    assert [(e["text"], e["type"]) for e in expected["entities"]] == [
        ("Қазақстан", "GPE"), ("Қасым-Жомарт Тоқаев", "PERSON"), ("Бейбітшілік кеңесін", "ORGANISATION")]
    app = create_app(predictor, ServeLimits(window_ms=1), model_info={"checkpoint": str(tiny_ner_checkpoint)})
    shot = tmp_path / "page.png"
    with background_server(app) as url, headless_chromium() as driver:
        facts = analyse_in_page(driver, url + "/", EXAMPLE)
        driver.save_screenshot(str(shot))
        # A bad request shows the server's error in the page (and the server keeps serving).
        bad = analyse_in_page(driver, url + "/", '{"text": "Астана", "targets": [[0, 99]]}')
        again = analyse_in_page(driver, url + "/", EXAMPLE)
    assert facts["error"] is None, facts["error"]
    assert facts["doc_text"] == [EXAMPLE]  # the highlighted text reads as the input
    got = [(e["text"], e["type"], e["tag"], e["start"], e["end"]) for e in facts["entities"]]
    assert got == [(e["text"], e["type"], e["type"], e["char_start"], e["char_end"]) for e in expected["entities"]]
    backgrounds = [e["background"] for e in facts["entities"]]
    assert len(set(backgrounds)) == 3 and "rgba(0, 0, 0, 0)" not in backgrounds  # one colour per type
    # Stance: every target entity (GPE, PERSON, ORGANISATION) has a label, its colour and probabilities.
    assert facts["stance_colours"] == STANCE_RGB
    assert [(t["text"], t["label"]) for t in facts["targets"]] == [(t["text"], t["label"]) for t in expected["targets"]]
    for t, want in zip(facts["targets"], expected["targets"]):
        assert t["outline"] == STANCE_RGB[want["label"]] and t["badge"] == want["label"]
        for label, p in want["probs"].items():
            assert f"{label.ljust(8)}{p:.3f}" in t["tip"] and t["title"] == t["tip"]
    assert set(facts["legend"]) >= {"GPE", "PERSON", "ORGANISATION", "NONE", "FAVOR", "AGAINST"}
    assert facts["json_visible"] and '"entities"' in facts["json_text"] and "Тоқаев" in facts["json_text"]
    assert "3 entities, 3 stance targets" in facts["status"]
    assert bad["error"] and "422" in bad["error"] and "body.targets[0]" in bad["error"]
    assert again["error"] is None and len(again["entities"]) == 3
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert width >= 800 and height >= 500


def test_screenshot_script(tiny_ner_checkpoint, tiny_stance_checkpoint, tmp_path, capsys):
    _browser_or_skip()
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "screenshot_serve", Path(__file__).resolve().parents[1] / "tools" / "screenshot_serve.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out = tmp_path / "docs" / "page.png"
    rc = script.main([f"checkpoint={tiny_ner_checkpoint}", f"stance_checkpoint={tiny_stance_checkpoint}",
                      f"out={out}", "width=900", "height=500"])
    assert rc == 0 and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", out.read_bytes()[16:24]) == (900, 500)
    assert f"wrote {out}" in capsys.readouterr().out
