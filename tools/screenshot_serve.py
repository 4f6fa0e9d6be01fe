"""A screenshot of the server's page on a text, in headless Chromium (the picture in the docs; developer tooling).

    python tools/screenshot_serve.py checkpoint=DIR [stance_checkpoint=DIR] [out=docs/serve_page.png]
        [text="..."] [width=1100] [height=640] [threads=null]

Serves the checkpoint(s) on a free loopback port in this process, opens the page in the
system's headless Chromium (Debian: chromium, chromium-driver), types `text`, submits, and
saves the window as a PNG. Prints what the page highlighted.
"""

from __future__ import annotations

import sys
from pathlib import Path

from omegaconf import OmegaConf

DEFAULTS = {
    "checkpoint": None,
    "stance_checkpoint": None,
    "out": "docs/serve_page.png",
    "text": "Қазақстан Президенті Қасым-Жомарт Тоқаев Бейбітшілік кеңесін қолдады.",
    "width": 1100,
    "height": 640,
    "threads": None,
}


def main(argv: list[str]) -> int:
    cfg = OmegaConf.merge(OmegaConf.create(DEFAULTS), OmegaConf.from_dotlist(argv))
    if not cfg.checkpoint:
        print("usage: screenshot_serve.py checkpoint=DIR [stance_checkpoint=DIR] [out=PNG] [text=...]", file=sys.stderr)
        return 2
    from kazakh_ner_stance.predict import Predictor
    from kazakh_ner_stance.serve import create_app
    from kazakh_ner_stance.serve.browser import analyse_in_page, background_server, headless_chromium

    predictor = Predictor.from_pretrained(cfg.checkpoint, stance_checkpoint=cfg.stance_checkpoint,
                                          num_threads=cfg.threads)
    info = {"checkpoint": str(cfg.checkpoint)}
    if cfg.stance_checkpoint:
        info["stance_checkpoint"] = str(cfg.stance_checkpoint)
    out = Path(str(cfg.out))
    out.parent.mkdir(parents=True, exist_ok=True)
    with background_server(create_app(predictor, model_info=info)) as url, \
            headless_chromium(int(cfg.width), int(cfg.height)) as driver:
        facts = analyse_in_page(driver, url + "/", str(cfg.text))
        driver.save_screenshot(str(out))
    if facts["error"]:
        print(f"the page showed an error: {facts['error']}", file=sys.stderr)
        return 1
    for e in facts["entities"]:
        print(f"entity  {e['type']:<14} {e['text']}")
    for t in facts["targets"]:
        print(f"stance  {t['label']:<14} {t['text']}  ({' '.join(t['tip'].split()[-6:])})")
    print(f"wrote {out} ({out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
