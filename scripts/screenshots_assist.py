"""Screenshots of the AI region tool: ``xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python
scripts/screenshots_assist.py ../shared MODEL`` (writes docs/screenshots/assist_*.png): the hover preview, a
region refined with a negative click, and an accepted region after its detail was lowered. Nothing is saved."""

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
    tool._hover = c.to_widget(x, y)
    tool._update_preview()
    settle(app, 0.3)
    w.grab().save(str(OUT / "assist_preview.png"))
    tool.add_click(x, y)
    region = tool.result.region
    x0, y0, x1, y1 = region.bbox()
    # a negative click on the far side of the region from the positive one
    far = (
        QPointF(x1 - 0.15 * (x1 - x0), y0 + 0.5 * (y1 - y0))
        if x < (x0 + x1) / 2
        else QPointF(x0 + 0.15 * (x1 - x0), y0 + 0.5 * (y1 - y0))
    )
    tool.add_click(far.x(), far.y(), positive=False)
    settle(app, 0.3)
    w.grab().save(str(OUT / "assist_refined.png"))
    tool.accept()
    tool.step_detail(more=False)
    tool.step_detail(more=False)
    settle(app, 0.3)
    w.grab().save(str(OUT / "assist_detail.png"))
    w.session.history.clear() if hasattr(w.session.history, "clear") else None
    print("wrote", [p.name for p in sorted(OUT.glob("assist_*.png"))])
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
