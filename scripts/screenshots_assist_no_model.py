"""Screenshot of the AI region tool with no model at all: ``xvfb-run -a -s "-screen 0 1920x1080x24"
.venv/bin/python scripts/screenshots_assist_no_model.py ../shared [IMAGE REGION CLICKS OUT]`` (writes
docs/screenshots/assist_no_model.png): a whole-car photo of car-damage-extra-split/val, one click at the centre of
its largest labelled region, the region from the click network that ships with viaseg. Prints that region's IoU
with the label. Nothing is saved. ``REGION``: the index of the labelled region instead of the largest;
``CLICKS``: that many more clicks of the NoC protocol after the first (each in the largest error left, positive
or negative), as a labeller correcting the region would; ``OUT``: the file's name under docs/screenshots. The
thirty-third session's shot: ``200.jpg 4 8 assist_thin_corrected.png`` (a thin scratch the network found as a
whole bonnet, then corrected by negative clicks)."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path


def main(
    shared: str,
    image: str = "215.jpg",
    region_index: str = "",
    clicks: str = "0",
    out: str = "assist_no_model.png",
) -> int:
    from PySide6.QtWidgets import QApplication
    from shots import OUT, settle

    os.environ.setdefault("VIASEG_STATE_DIR", tempfile.mkdtemp(prefix="viaseg-shots-"))
    app = QApplication(sys.argv[:1])
    from viaseg.core.annotation.raster import rasterize
    from viaseg.core.assist.protocol import first_click, mask_iou, next_click
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
    masks = [rasterize([r], wh) > 0 for r in entry.regions]
    gt = masks[int(region_index)] if region_index else max(masks, key=lambda m: int(m.sum()))
    x, y = first_click(gt)
    ml.assist.add_click(x, y)
    ml.assist.wait_fitted()  # the fit to the photo's edges runs on its own thread
    wait_net()
    region = ml.assist.result.region
    print(f"{image}: region from the {region.source}, IoU {mask_iou(gt, region.full(wh)):.3f} with the label")
    for _ in range(int(clicks)):
        nxt = next_click(gt, ml.assist.result.region.full(wh))
        if nxt is None:
            break
        ml.assist.add_click(*nxt)
        ml.assist.wait_fitted()  # the fit to the photo's edges runs on its own thread
        settle(app, 0.3)
        region = ml.assist.result.region
        print(f"  {'positive' if nxt[2] else 'negative'} click: IoU {mask_iou(gt, region.full(wh)):.3f}")
    w.grab().save(str(OUT / out))
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
