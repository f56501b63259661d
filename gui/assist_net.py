"""The AI region tool's use of the click network (``core.ml.clicknet``, run by ``gui.clicknet_service``): which
questions to ask (the first positive click; the point where the cursor rests, for the preview), the answers kept
per (photo, click) and given to the tool's ``Segmenter``, and what a failure or new weights do. Mixed into
``gui.assist_tool.AssistTool``, whose state (clicks, box, hover, segmenter, canvas) it reads."""

from __future__ import annotations

from collections import OrderedDict

from PySide6.QtCore import QTimer
from viaseg.core.assist import segment as assist

REST_MS = 150  # the cursor resting this long asks the click network about that point (the preview)
NET_REGIONS_KEPT = 256  # the click network's regions kept (photo, click)


class ClickNetAsking:
    def _init_net(self, net) -> None:
        # the click network: a ClickNetService (gui.clicknet_service) or None; its answers, (photo key, click) -> region
        # (None: it found nothing there)
        self.net = net
        self.use_net = net is not None
        self._net_regions: OrderedDict[tuple, assist.RegionMask | None] = OrderedDict()
        self._net_asked: set = set()
        self._accept_pending = False  # Enter came while the first click's answer was awaited
        self._rest = QTimer(self, singleShot=True, interval=REST_MS)
        self._rest.timeout.connect(self._ask_hover)
        if net is not None:
            net.answered.connect(self._net_answered)
            net.failed.connect(self._net_failed)
            net.dropped.connect(self._net_dropped)
            if hasattr(net, "weights_changed"):
                net.weights_changed.connect(self._net_reset)

    def set_use_net(self, on: bool) -> None:
        """Use the click network for first clicks (when there is one); the current region is found again."""
        self.use_net = bool(on) and self.net is not None
        self._seg = None
        if self.active:
            self._recompute()
            self._say_ready()
            if self.use_net:
                QTimer.singleShot(0, self._warm_net)

    def _net_reset(self, _path: str = "") -> None:
        """The click network's weights changed: its earlier answers are forgotten; the current region is found
        again (and asked again)."""
        self._net_regions.clear()
        self._net_asked.clear()
        self._seg = None
        if self.active:
            first = self._first_click()
            if first is not None:
                self._ask_net(first)
            self._recompute()
            if self.use_net:
                QTimer.singleShot(0, self._warm_net)

    def _warm_net(self) -> None:
        if self.active and self.use_net and self.net is not None and hasattr(self.net, "warm"):
            self.net.warm()

    def _first_click(self) -> assist.Click | None:
        return next((c for c in self.clicks if c.positive), None) if self.box is None else None

    def _ask_net(self, click: assist.Click, hover: bool = False) -> bool:
        """Ask the click network about ``click`` unless answered or asked already; True when asked now."""
        if not self.use_net or self.net is None:
            return False
        key = self.target_key()
        tag = (key, click)
        if key is None or tag in self._net_regions or tag in self._net_asked:
            return False
        seg = self.segmenter()
        if seg is None or seg.image is None:
            return False
        self._net_asked.add(tag)
        self.net.ask(tag, seg.image, seg.size_wh, click.x, click.y, hover=hover)
        return True

    def _ask_hover(self) -> None:
        if not self.active or self.clicks or self.box is not None or self._hover is None:
            return
        ip = self.canvas.to_image(self._hover)
        w, h = self.canvas.img_size
        if 0 <= ip.x() < w and 0 <= ip.y() < h:
            self._ask_net(assist.Click(ip.x(), ip.y(), True), hover=True)

    def _net_answered(self, tag, found) -> None:
        self._net_asked.discard(tag)
        key, click = tag
        region = None
        if found is not None and found.mask.any():
            region = assist.RegionMask(found.mask, found.x0, found.y0, found.scale, "click network")
        self._net_regions[tag] = region
        while len(self._net_regions) > NET_REGIONS_KEPT:
            self._net_regions.popitem(last=False)
        if not self.use_net or key != self.target_key():
            return
        if self._seg is not None:
            self._seg[1].give_first_region(click, region)
        if self._first_click() == click:
            self._recompute()
            if self._accept_pending:
                self.accept()
        elif not self.clicks and self._hover is not None:
            self._update_preview()

    def _net_dropped(self, tag) -> None:
        """A question will not be answered (replaced before it was sent): the first click's is asked again."""
        self._net_asked.discard(tag)
        if self.active and self.use_net and tag == (self.target_key(), self._first_click()):
            self._ask_net(tag[1])

    def _net_failed(self, tag, message: str) -> None:
        if tag is not None:
            self._net_asked.discard(tag)
        if self.use_net:
            self.use_net = False
            self._say(f"The click network is off for this session: {message}")
            self.net_disabled.emit(message)
            if self.active and (self.clicks or self.box is not None):
                self._recompute()  # found without the network (fitted to the photo's edges)
        if self._accept_pending:
            self.accept()  # what is on screen (once fitted to the photo's edges: gui.assist_fit)
