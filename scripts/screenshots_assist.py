"""Screenshots of the AI region tool: ``xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python
scripts/screenshots_assist.py ../shared MODEL`` (writes docs/screenshots/assist_*.png): the hover preview, a
region refined with a negative click (the first click's region from the click network), an accepted region after its detail was lowered, and a region in two
pieces (a positive click on a second damage outside it; the click network off). Nothing is saved."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from PySide6.QtCore import QPointF
from PySide6.QtWidgets import QApplication
from shots import OUT, settle


def main(shared: str, model: str, image: str = "image63.jpg") -> int:
    import numpy as np

    os.environ.setdefault("VIASEG_STATE_DIR", tempfile.mkdtemp(prefix="viaseg-shots-"))
    app = QApplication(sys.argv[:1])
    from viaseg.gui.app import create_window

    w = create_window(str(Path(shared) / "datasets" / "car-damage"), restore=False)
    w.resize(1600, 1000)
    w.show()
    ml = w.ml
    ml.training.set_active_model(model)
    row = next(i for i, r in enumerate(w.session.rows) if r.entry.filename == image)
    w.show_row(row)
    settle(app, 0.5)
    tool = ml.assist
    ml.act_assist.trigger()
    end = time.time() + 60
    while tool.target_key() not in tool._maps and time.time() < end:
        settle(app, 0.1)
    ml.prediction.mode.setCurrentIndex(ml.prediction.mode.findData("outline"))
    c = w.canvas
    prob = ml.prediction.probs
    ys, xs = np.nonzero(prob > 0.8)
    k = int(np.argmax(prob[ys, xs]))
    x, y = float(xs[k]), float(ys[k])
    # the cursor resting on the damage: the preview is the click network's region (asked while it rests)
    tool._hover = c.to_widget(x, y)
    x, y = c.to_image(tool._hover).x(), c.to_image(tool._hover).y()
    tool._update_preview()

    def wait_net():
        end = time.time() + 120
        settle(app, 0.3)
        while ml.clicknet.busy() and time.time() < end:
            settle(app, 0.1)
        settle(app, 0.2)

    wait_net()
    w.grab().save(str(OUT / "assist_preview.png"))
    tool.add_click(x, y)
    tool.wait_fitted()  # the fit to the photo's edges runs on its own thread
    wait_net()
    print("first region from:", tool.result.region.source)
    inside = np.nonzero(tool.result.region.full(c.img_size))  # the region's extent (its crop may be larger)
    x0, y0, x1, y1 = inside[1].min(), inside[0].min(), inside[1].max() + 1, inside[0].max() + 1
    # a negative click on the far side of the region from the positive one
    far = (
        QPointF(x1 - 0.15 * (x1 - x0), y0 + 0.5 * (y1 - y0))
        if x < (x0 + x1) / 2
        else QPointF(x0 + 0.15 * (x1 - x0), y0 + 0.5 * (y1 - y0))
    )
    tool.add_click(far.x(), far.y(), positive=False)
    tool.wait_fitted()  # the fit to the photo's edges runs on its own thread
    settle(app, 0.3)
    w.grab().save(str(OUT / "assist_refined.png"))
    tool.accept()
    tool.step_detail(more=False)
    tool.step_detail(more=False)
    settle(app, 0.3)
    w.grab().save(str(OUT / "assist_detail.png"))
    # a new region: the same first click, then a positive click on another damage the map sees outside it: the
    # region comes in two pieces, both outlined, and Enter adds a polygon region for each
    import cv2
    from viaseg.core.assist.segment import parts

    # (with the click network off: its region here already holds every damage the map sees)
    tool.cancel()
    tool.set_use_net(False)
    tool.add_click(x, y)
    tool.wait_fitted()  # the fit to the photo's edges runs on its own thread
    first = tool.result.region.full(c.img_size)
    small = cv2.resize(
        first.astype(np.uint8), (prob.shape[1], prob.shape[0]), interpolation=cv2.INTER_NEAREST
    )
    n, lab, stats, _ = cv2.connectedComponentsWithStats((prob > 0.5).astype(np.uint8), connectivity=8)
    blobs = [k for k in range(1, n) if not (small[lab == k]).any()]
    if blobs:
        k = max(blobs, key=lambda k: stats[k, cv2.CC_STAT_AREA])
        ry, rx = np.nonzero(lab == k)
        sx, sy = c.img_size[0] / prob.shape[1], c.img_size[1] / prob.shape[0]
        tool.add_click(float(rx.mean()) * sx, float(ry.mean()) * sy)
        tool.wait_fitted()  # the fit to the photo's edges runs on its own thread
        settle(app, 0.3)
        w.grab().save(str(OUT / "assist_parts.png"))
        print("pieces:", len(parts(tool.result.region)))
    w.session.history.clear() if hasattr(w.session.history, "clear") else None
    print("wrote", [p.name for p in sorted(OUT.glob("assist_*.png"))])
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
