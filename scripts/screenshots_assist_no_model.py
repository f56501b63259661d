"""Screenshot of the AI region tool with no model at all: ``xvfb-run -a -s "-screen 0 1920x1080x24"
.venv/bin/python scripts/screenshots_assist_no_model.py ../shared`` (writes docs/screenshots/assist_no_model.png):
a whole-car photo of car-damage-extra-split/val, one click at the centre of its largest labelled region, the
region from the click network that ships with viaseg. Prints that region's IoU with the label. Nothing is saved."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path


def main(shared: str, image: str = "215.jpg") -> int:
    from PySide6.QtWidgets import QApplication
    from shots import OUT, settle

    os.environ.setdefault("VIASEG_STATE_DIR", tempfile.mkdtemp(prefix="viaseg-shots-"))
    app = QApplication(sys.argv[:1])
    from viaseg.core.annotation.raster import rasterize
    from viaseg.core.assist.protocol import first_click, mask_iou
    from viaseg.gui.app import create_window

    w = create_window(str(Path(shared) / "datasets" / "car-damage-extra-split"), restore=False)
    w.resize(1400, 900)
    w.show()
    settle(app, 0.5)
    ml = w.ml
    row = next(i for i, r in enumerate(w.session.rows) if r.entry.filename == image)
    w.show_row(row)
    settle(app, 0.5)
    entry = w.current_entry()
    assert not ml.service.has_model()
    ml.act_assist.trigger()

    def wait_net(least: float = 0.0) -> None:
        t = time.time()
        while (ml.clicknet.busy() or time.time() - t < least) and time.time() - t < 120:
            settle(app, 0.1)
        settle(app, 0.3)

    wait_net(1.0)
    wh = w.canvas.img_size
    gt = max((rasterize([r], wh) > 0 for r in entry.regions), key=lambda m: int(m.sum()))
    x, y = first_click(gt)
    ml.assist.add_click(x, y)
    wait_net()
    region = ml.assist.result.region
    print(f"{image}: region from the {region.source}, IoU {mask_iou(gt, region.full(wh)):.3f} with the label")
    w.grab().save(str(OUT / "assist_no_model.png"))
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
