#!/usr/bin/env python3
"""End-to-end test of the server's demo page in headless Chromium.

Starts //serving:server on a free port with a random-weights model
(//serving/testing:make_test_model) and the MTCNN weights of ../shared, opens
the page in headless Chromium driven through the DevTools protocol over
--remote-debugging-pipe (fd 3: commands to Chromium, fd 4: replies and events,
each message JSON followed by a NUL byte), uploads photos through the page's
own file input (DOM.setFileInputFiles fires its change event) and checks what
the page rendered against the reply the page itself received (read back with
Network.getResponseBody):

  * face_sdk_test1.jpg: 2 face cards, one bar per class whose widths sum to
    100%, the labels and probabilities of the reply, a box per face drawn on
    the canvas (its colour read back from the canvas pixels), landmarks, the
    timings, no error; the request was a raw image/jpeg POST to /v1/faces;
  * a text file (text/plain) and text named .jpg (image/jpeg): the server's
    error message shown, no face card;
  * face_sdk_test1_cropped.jpg with "skip detection" ticked:
    ?skip_detection=true is sent and one card is shown; "sort bars" orders
    them by probability;
  * the photo dropped onto the drop zone (Input.dispatchDragEvent): 2 cards;
  * no JavaScript exception, no request leaves the server's origin.

Screenshots go to $TEST_UNDECLARED_OUTPUTS_DIR (PNG). Without ../shared the
test prints why and passes (as the C++ tests skip via DMUE_SHARED_OR_SKIP).

Standard library only. Outside Bazel, --url=http://host:port runs the page
checks against an already running server (or a stub), --shared_dir gives
../shared.
"""

import argparse
import base64
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

CLASSES = ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt"]
PHOTO = "data/photos/face_sdk_test1.jpg"  # 2 faces (data/photos/README.md)
PHOTO_FACES = 2
CROP = "data/photos/face_sdk_test1_cropped.jpg"  # an aligned 112x112 face
MTCNN = "models/mtcnn"
WORKSPACE = "dmue_cpp"


class TestFailure(Exception):
    pass


def log(*args):
    print("[web_ui_test]", *args, flush=True)


def check(condition, message):
    if not condition:
        raise TestFailure(message)


# --------------------------------------------------------------------------
# Locating files

def runfile(relative):
    """Path of a runfile of this workspace, or None outside Bazel."""
    srcdir = os.environ.get("TEST_SRCDIR")
    if srcdir:
        path = os.path.join(srcdir, WORKSPACE, relative)
        if os.path.exists(path):
            return path
    return None


def find_shared(explicit, needed):
    """The ../shared root holding every `needed` file, or (None, reason).

    Same candidates, in the same order, as third_party/shared_data.cc."""
    roots = []
    if explicit:
        roots.append(explicit)
    if os.environ.get("DMUE_SHARED_DIR"):
        roots.append(os.environ["DMUE_SHARED_DIR"])
    srcdir = os.environ.get("TEST_SRCDIR")
    if srcdir:
        roots += [os.path.join(srcdir, "shared"), os.path.join(srcdir, WORKSPACE, "external", "shared")]
    if os.environ.get("BUILD_WORKSPACE_DIRECTORY"):
        roots.append(os.path.join(os.environ["BUILD_WORKSPACE_DIRECTORY"], "..", "shared"))
    roots.append(os.path.join("..", "shared"))
    tried = []
    for root in roots:
        missing = [n for n in needed if not os.path.exists(os.path.join(root, n))]
        if not missing:
            return os.path.abspath(root), None
        tried.append(os.path.join(root, missing[0]))
    return None, ("shared data file '%s' not found (the read-only ../shared folder is absent or "
                  "incomplete; set DMUE_SHARED_DIR to override). Tried: %s" % (needed[0], ", ".join(tried)))


def find_chromium():
    # Debian's binary itself, not the /usr/bin/chromium launcher script (which
    # adds /etc/chromium.d flags).
    if os.access("/usr/lib/chromium/chromium", os.X_OK):
        return "/usr/lib/chromium/chromium"
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


# --------------------------------------------------------------------------
# The server under test

class Server:
    def __init__(self, binary, config_path, log_path):
        self.log_path = log_path
        self.log_file = open(log_path, "w")
        self.proc = subprocess.Popen([binary, "--config=" + config_path, "--port=0"],
                                     stdout=self.log_file, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.url = None

    def log_text(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def wait_ready(self, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise TestFailure("the server exited with status %s:\n%s" % (self.proc.returncode, self.log_text()))
            if self.url is None:
                for line in self.log_text().splitlines():
                    if "listening on http://" in line:
                        self.url = "http://" + line.split("listening on http://", 1)[1].split()[0].rstrip("/")
                        # 0.0.0.0 / [::] are not addresses to connect to.
                        parsed = urllib.parse.urlsplit(self.url)
                        if parsed.hostname in ("0.0.0.0", "::"):
                            self.url = "http://127.0.0.1:%d" % parsed.port
                        break
            if self.url is not None:
                try:
                    with urllib.request.urlopen(self.url + "/v2/health/ready", timeout=5) as r:
                        if r.status == 200:
                            return self.url
                except (urllib.error.URLError, OSError):
                    pass
            time.sleep(0.2)
        raise TestFailure("the server was not ready within %ds:\n%s" % (timeout, self.log_text()))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log_file.close()


def post(url, body, content_type):
    """(status, parsed JSON or None) of a POST."""
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            status, text = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read()
    try:
        return status, json.loads(text)
    except ValueError:
        return status, None


# --------------------------------------------------------------------------
# Chromium over the DevTools pipe

class Browser:
    """Headless Chromium; one page target, attached in flat session mode."""

    def __init__(self, chromium, profile_dir, log_path):
        # to_chrome: we write, Chromium reads on fd 3; from_chrome: Chromium writes on fd 4.
        to_read, to_write = os.pipe()
        from_read, from_write = os.pipe()

        def child_fds():
            # Move both ends above 4 first so that neither is clobbered.
            a = os.dup(to_read) if to_read <= 4 else to_read
            b = os.dup(from_write) if from_write <= 4 else from_write
            while a <= 4:
                a = os.dup(a)
            while b <= 4:
                b = os.dup(b)
            os.dup2(a, 3)
            os.dup2(b, 4)

        args = [
            chromium,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--remote-debugging-pipe",
            "--user-data-dir=" + profile_dir,
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--metrics-recording-only",
            "--mute-audio",
            "--hide-scrollbars",
            "--force-color-profile=srgb",
            "--window-size=1280,900",
            "about:blank",
        ]
        env = dict(os.environ)
        env.setdefault("HOME", profile_dir)
        env["HOME"] = env["HOME"] if os.access(env["HOME"], os.W_OK) else profile_dir
        env.setdefault("XDG_CONFIG_HOME", os.path.join(profile_dir, "xdg-config"))
        env.setdefault("XDG_CACHE_HOME", os.path.join(profile_dir, "xdg-cache"))
        self.log_path = log_path
        self.log_file = open(log_path, "w")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self.log_file, stderr=subprocess.STDOUT,
                                     preexec_fn=child_fds, pass_fds=(3, 4), env=env, start_new_session=True)
        os.close(to_read)
        os.close(from_write)
        self.wfd = to_write
        self.rfd = from_read
        self.next_id = 0
        self.replies = {}
        self.events = queue.Queue()
        self.cond = threading.Condition()
        self.closed = False
        self.reader = threading.Thread(target=self._read_loop, daemon=True)
        self.reader.start()
        self.session = None

    def log_text(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()[-4000:]

    def _read_loop(self):
        buf = b""
        while True:
            try:
                chunk = os.read(self.rfd, 1 << 20)
            except OSError:
                chunk = b""
            if not chunk:
                with self.cond:
                    self.closed = True
                    self.cond.notify_all()
                return
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                if "id" in msg:
                    with self.cond:
                        self.replies[msg["id"]] = msg
                        self.cond.notify_all()
                else:
                    self.events.put(msg)

    def call(self, method, params=None, session=True, timeout=60):
        with self.cond:
            self.next_id += 1
            msg_id = self.next_id
        msg = {"id": msg_id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        data = json.dumps(msg).encode() + b"\0"
        while data:
            n = os.write(self.wfd, data)
            data = data[n:]
        deadline = time.time() + timeout
        with self.cond:
            while msg_id not in self.replies:
                if self.closed:
                    raise TestFailure("Chromium closed the DevTools pipe (during %s):\n%s" % (method, self.log_text()))
                left = deadline - time.time()
                if left <= 0:
                    raise TestFailure("no reply to %s within %ds" % (method, timeout))
                self.cond.wait(left)
            reply = self.replies.pop(msg_id)
        if "error" in reply:
            raise TestFailure("%s failed: %s" % (method, reply["error"]))
        return reply.get("result", {})

    def open_page(self):
        target = self.call("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True},
                                 session=False)["sessionId"]

    def drain_events(self):
        out = []
        while True:
            try:
                out.append(self.events.get_nowait())
            except queue.Empty:
                return out

    def wait_event(self, method, timeout, keep):
        """Waits for `method`; other events are appended to `keep`."""
        deadline = time.time() + timeout
        while True:
            left = deadline - time.time()
            if left <= 0:
                raise TestFailure("no %s event within %ds" % (method, timeout))
            try:
                ev = self.events.get(timeout=left)
            except queue.Empty:
                continue
            keep.append(ev)
            if ev.get("method") == method:
                return ev

    def evaluate(self, expression):
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True})
        if "exceptionDetails" in result:
            raise TestFailure("evaluating %r threw: %s" % (expression[:80], json.dumps(result["exceptionDetails"])[:800]))
        return result["result"].get("value")

    def close(self):
        try:
            if not self.closed:
                self.call("Browser.close", session=False, timeout=10)
        except TestFailure:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        for fd in (self.wfd, self.rfd):
            try:
                os.close(fd)
            except OSError:
                pass
        self.log_file.close()


# --------------------------------------------------------------------------
# The page checks

# Everything the page rendered, as one JSON-able value.
READ_PAGE = r"""
(() => {
  const status = document.getElementById('status');
  const error = document.getElementById('error');
  const canvas = document.getElementById('canvas');
  const cards = [...document.querySelectorAll('#faces .face-card')].map(card => ({
    index: card.dataset.index,
    label: card.dataset.label,
    color: card.dataset.color,
    shownLabel: card.querySelector('.face-label').textContent,
    bars: [...card.querySelectorAll('.bar-row')].map(row => {
      const bar = row.querySelector('.bar');
      const track = row.querySelector('.bar-track');
      return {
        label: row.dataset.label,
        value: parseFloat(row.dataset.value),
        top: row.classList.contains('top'),
        stylePct: parseFloat(bar.style.width),
        renderedPct: 100 * bar.getBoundingClientRect().width / track.getBoundingClientRect().width,
      };
    }),
  }));
  return {
    state: status.dataset.state,
    run: Number(status.dataset.run || 0),
    statusText: status.textContent,
    errorHidden: error.hidden,
    errorVisible: error.getBoundingClientRect().height > 0,
    errorText: error.textContent,
    canvas: {
      width: canvas.width, height: canvas.height,
      boxes: Number(canvas.dataset.boxes), landmarks: Number(canvas.dataset.landmarks),
      scaleX: Number(canvas.dataset.scaleX), scaleY: Number(canvas.dataset.scaleY),
      lineWidth: Number(canvas.dataset.lineWidth),
      shown: canvas.getBoundingClientRect().width > 0,
    },
    timings: Object.fromEntries([...document.querySelectorAll('#timings [data-key]')]
        .map(li => [li.dataset.key, Number(li.dataset.ms)])),
    cards,
  };
})()
"""

# [r, g, b, a] of canvas pixels: PIXELS % [[x, y], ...]
READ_PIXELS = r"""
(() => {
  const ctx = document.getElementById('canvas').getContext('2d');
  return %s.map(([x, y]) => [...ctx.getImageData(Math.round(x), Math.round(y), 1, 1).data]);
})()
"""


def hex_rgb(color):
    color = color.lstrip("#")
    return [int(color[i:i + 2], 16) for i in (0, 2, 4)]


class PageSession:
    def __init__(self, browser, url, out_dir):
        self.b = browser
        self.url = url
        self.out_dir = out_dir
        self.events = []  # every event seen, for the network / exception checks
        self.last_run = 0

    def load(self):
        b = self.b
        b.call("Page.enable")
        b.call("Runtime.enable")
        b.call("Network.enable", {"maxTotalBufferSize": 64 << 20, "maxResourceBufferSize": 16 << 20})
        b.call("DOM.enable")
        b.call("Emulation.setDeviceMetricsOverride",
               {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False})
        b.call("Page.navigate", {"url": self.url + "/"})
        b.wait_event("Page.loadEventFired", 60, self.events)
        title = b.evaluate("document.title")
        check("DMUE" in (title or ""), "unexpected page title %r (is / serving the demo page?)" % title)
        state = b.evaluate("document.getElementById('status').dataset.state")
        check(state == "idle", "status after load is %r, not idle" % state)

    def upload(self, path, timeout=120):
        """Chooses `path` in the page's file input; returns the rendered page."""
        b = self.b
        root = b.call("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
        node = b.call("DOM.querySelector", {"nodeId": root, "selector": "#file-input"})["nodeId"]
        check(node, "no #file-input on the page")
        b.call("DOM.setFileInputFiles", {"nodeId": node, "files": [path]})
        return self.wait_rendered(path, timeout)

    def drop(self, path, timeout=120):
        """Drags `path` onto the drop zone with the mouse; returns the rendered page."""
        b = self.b
        rect = b.evaluate("(() => { const r = document.getElementById('drop-zone').getBoundingClientRect();"
                          " return [r.left + r.width / 2, r.top + 12]; })()")
        data = {"items": [], "files": [path], "dragOperationsMask": 1}
        for kind in ("dragEnter", "dragOver", "drop"):
            b.call("Input.dispatchDragEvent", {"type": kind, "x": rect[0], "y": rect[1], "data": data})
        return self.wait_rendered(path, timeout)

    def wait_rendered(self, path, timeout):
        b = self.b
        deadline = time.time() + timeout
        while True:
            self.events += b.drain_events()
            page = b.evaluate(READ_PAGE)
            if page["run"] > self.last_run and page["state"] in ("done", "error"):
                self.last_run = page["run"]
                return page
            if time.time() > deadline:
                raise TestFailure("the page did not finish within %ds after uploading %s; status %r (%s)"
                                  % (timeout, path, page["statusText"], page["state"]))
            time.sleep(0.1)

    def faces_exchange(self):
        """(request, response, parsed reply) of the page's last /v1/faces exchange."""
        self.events += self.b.drain_events()
        requests, responses, finished = {}, {}, set()
        for ev in self.events:
            p = ev.get("params", {})
            if ev.get("method") == "Network.requestWillBeSent" and "/v1/faces" in p["request"]["url"]:
                requests[p["requestId"]] = p["request"]
            elif ev.get("method") == "Network.responseReceived" and p["requestId"] in requests:
                responses[p["requestId"]] = p["response"]
            elif ev.get("method") == "Network.loadingFinished" and p["requestId"] in requests:
                finished.add(p["requestId"])
        done = [rid for rid in requests if rid in finished and rid in responses]
        check(done, "the page made no completed /v1/faces request")
        rid = done[-1]
        # Network.getResponseBody answers "evicted from inspector cache" for
        # this fetch (a File body); the page shows the reply's text verbatim.
        text = self.b.evaluate("document.getElementById('raw-json').textContent")
        try:
            reply = json.loads(text)
        except ValueError:
            raise TestFailure("#raw-json does not hold the JSON reply: %r" % text[:500])
        return requests[rid], responses[rid], reply

    def screenshot(self, name):
        if not self.out_dir:
            return
        data = self.b.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})["data"]
        path = os.path.join(self.out_dir, name)
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        log("screenshot:", path)

    def pixels(self, points):
        return self.b.evaluate(READ_PIXELS % json.dumps(points))

    def final_checks(self, origin):
        self.events += self.b.drain_events()
        exceptions = [ev["params"]["exceptionDetails"] for ev in self.events
                      if ev.get("method") == "Runtime.exceptionThrown"]
        check(not exceptions, "JavaScript exceptions on the page: %s" % json.dumps(exceptions)[:2000])
        console_errors = [ev["params"] for ev in self.events
                          if ev.get("method") == "Runtime.consoleAPICalled" and ev["params"].get("type") == "error"]
        check(not console_errors, "console errors on the page: %s" % json.dumps(console_errors)[:2000])
        foreign = sorted({ev["params"]["request"]["url"] for ev in self.events
                          if ev.get("method") == "Network.requestWillBeSent"
                          and not ev["params"]["request"]["url"].startswith((origin, "blob:", "data:"))})
        check(not foreign, "the page requested resources outside its origin: %s" % foreign)


def check_faces_page(page, request, response, reply, expect_faces, content_type, skip_detection):
    """What the page rendered equals the reply it got."""
    check(page["state"] == "done", "status %r (%s), error shown: %r" % (page["state"], page["statusText"], page["errorText"]))
    check(page["errorHidden"] and not page["errorVisible"], "an error is shown: %r" % page["errorText"])
    n = len(reply["faces"])
    if expect_faces is not None:
        check(n == expect_faces, "the server found %d faces, expected %d: %s" % (n, expect_faces, json.dumps(reply)[:1000]))
    check(page["statusText"] == "done: %d %s" % (n, "face" if n == 1 else "faces"),
          "status text %r for %d faces" % (page["statusText"], n))

    # The request: a raw-body POST of the photo.
    check(request["method"] == "POST", "the page sent %s, not POST" % request["method"])
    headers = {k.lower(): v for k, v in request.get("headers", {}).items()}
    check(headers.get("content-type", "").startswith(content_type),
          "request Content-Type %r, expected %s (raw body)" % (headers.get("content-type"), content_type))
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(request["url"]).query)
    if skip_detection:
        check(query.get("skip_detection") == ["true"], "skip_detection not sent: %s" % request["url"])
    else:
        check("skip_detection" not in query, "skip_detection sent unticked: %s" % request["url"])
    check(response["status"] == 200, "reply status %s" % response["status"])

    classes = reply["classes"]
    cards = page["cards"]
    check(len(cards) == n, "%d face cards for %d faces" % (len(cards), n))
    check(page["canvas"]["shown"], "the canvas is not shown")
    check(page["canvas"]["boxes"] == n, "%s boxes drawn for %d faces" % (page["canvas"]["boxes"], n))
    landmarks = sum(len(f.get("landmarks") or []) for f in reply["faces"])
    check(page["canvas"]["landmarks"] == landmarks, "%s landmarks drawn, the reply has %d"
          % (page["canvas"]["landmarks"], landmarks))
    for key in ("decode", "detect", "classify", "total", "round_trip"):
        check(key in page["timings"] and page["timings"][key] >= 0, "timing %r not shown: %s" % (key, page["timings"]))
    for i, (card, face) in enumerate(zip(cards, reply["faces"])):
        check(card["index"] == str(i), "card %d has data-index %r" % (i, card["index"]))
        check(card["label"] == face["label"] and card["shownLabel"] == face["label"],
              "card %d shows %r / %r, the reply says %r" % (i, card["label"], card["shownLabel"], face["label"]))
        check(face["label"] == classes[face["label_index"]], "reply label / label_index disagree: %s" % face)
        check(len(card["bars"]) == len(classes), "card %d has %d bars for %d classes" % (i, len(card["bars"]), len(classes)))
        check(sorted(bar["label"] for bar in card["bars"]) == sorted(classes), "card %d bar labels %s" % (i, card["bars"]))
        style_sum = sum(bar["stylePct"] for bar in card["bars"])
        rendered_sum = sum(bar["renderedPct"] for bar in card["bars"])
        check(abs(style_sum - 100) < 0.1, "card %d bar widths sum to %.3f%%" % (i, style_sum))
        check(abs(rendered_sum - 100) < 2, "card %d rendered bar widths sum to %.2f%%" % (i, rendered_sum))
        for bar in card["bars"]:
            p = face["probabilities"][bar["label"]]
            check(abs(bar["value"] - p) < 1e-6 and abs(bar["stylePct"] - 100 * p) < 0.01,
                  "card %d bar %s shows %s (%.3f%%), the reply says %s" % (i, bar["label"], bar["value"], bar["stylePct"], p))
            check(bar["top"] == (bar["label"] == face["label"]), "card %d: bar %s top=%s" % (i, bar["label"], bar["top"]))


def check_boxes_drawn(session, page, reply):
    """Each face's box is on the canvas in its card's colour (left edge, middle)."""
    c = page["canvas"]
    points, colors = [], []
    for card, face in zip(page["cards"], reply["faces"]):
        x1, y1, x2, y2 = face["box"]
        x = min(max(x1 * c["scaleX"], 1), c["width"] - 2)
        y = (y1 + y2) / 2 * c["scaleY"]
        points.append([x, y])
        colors.append(hex_rgb(card["color"]))
    for (x, y), got, want in zip(points, session.pixels(points), colors):
        check(all(abs(g - w) <= 8 for g, w in zip(got[:3], want)) and got[3] == 255,
              "canvas pixel (%d, %d) is %s, not the box colour %s" % (x, y, got, want))


def run_page_checks(browser, url, shared, out_dir, tmp_dir):
    session = PageSession(browser, url, out_dir)
    session.load()
    session.screenshot("web_ui_empty.png")

    # 1. The two-face photo.
    photo = os.path.join(shared, PHOTO)
    page = session.upload(photo)
    request, response, reply = session.faces_exchange()
    session.screenshot("web_ui_faces.png")
    check_faces_page(page, request, response, reply, PHOTO_FACES, "image/jpeg", skip_detection=False)
    check_boxes_drawn(session, page, reply)
    log("photo: %s -> %d face cards, labels %s, timings %s" % (
        PHOTO, len(page["cards"]), [c["label"] for c in page["cards"]], page["timings"]))

    # 2. Not images: a text file (sent as text/plain) and text named .jpg
    # (sent as image/jpeg, so it reaches the decoder). The page shows the
    # server's error message, and no face.
    for name, content_type, shot in (("not_a_photo.txt", "text/plain", "web_ui_error.png"),
                                     ("broken_photo.jpg", "image/jpeg", None)):
        bogus = os.path.join(tmp_dir, name)
        with open(bogus, "w") as f:
            f.write("this is not an image\n" * 20)
        with open(bogus, "rb") as f:
            status, expected = post(url + "/v1/faces", f.read(), content_type)
        check(400 <= status < 600 and expected and isinstance(expected.get("error"), str),
              "the server answered %s %s to %s" % (status, expected, name))
        page = session.upload(bogus)
        if shot:
            session.screenshot(shot)
        check(page["state"] == "error", "status %r after uploading %s (%s)" % (page["state"], name, page["statusText"]))
        check(not page["errorHidden"] and page["errorVisible"], "no error shown after uploading %s" % name)
        check(expected["error"] in page["errorText"],
              "the page shows %r, the server's message is %r" % (page["errorText"], expected["error"]))
        check(str(status) in page["statusText"], "status %r does not name HTTP %d" % (page["statusText"], status))
        check(not page["cards"], "face cards shown after an error")
        check(page["canvas"]["boxes"] == 0, "boxes still recorded after an error")
        log("%s: HTTP %d, error shown: %r" % (name, status, page["errorText"]))

    # 3. An aligned crop with "skip detection" ticked: classified whole.
    browser.evaluate("document.getElementById('skip-detection').checked = true")
    page = session.upload(os.path.join(shared, CROP))
    request, response, reply = session.faces_exchange()
    check_faces_page(page, request, response, reply, 1, "image/jpeg", skip_detection=True)
    log("crop with skip_detection: label %s" % page["cards"][0]["label"])

    # 4. Sorting the bars reorders them by probability.
    browser.evaluate("document.getElementById('sort-bars').click()")
    page = browser.evaluate(READ_PAGE)
    values = [bar["value"] for bar in page["cards"][0]["bars"]]
    check(values == sorted(values, reverse=True), "sorted bars are not in decreasing order: %s" % values)

    # 5. Drag and drop onto the drop zone (detection on again).
    browser.evaluate("document.getElementById('skip-detection').checked = false")
    page = session.drop(photo)
    request, response, reply = session.faces_exchange()
    check_faces_page(page, request, response, reply, PHOTO_FACES, "image/jpeg", skip_detection=False)
    log("dropped photo: %d face cards" % len(page["cards"]))

    origin = "{0.scheme}://{0.netloc}".format(urllib.parse.urlsplit(url))
    session.final_checks(origin)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="test the page of this running server instead of starting one")
    parser.add_argument("--shared_dir", help="the ../shared folder (default: as third_party/shared_data.cc)")
    parser.add_argument("--server", help="server binary (default: the //serving:server runfile)")
    parser.add_argument("--make_test_model", help="model writer (default: the runfile)")
    parser.add_argument("--out_dir", help="screenshots (default: $TEST_UNDECLARED_OUTPUTS_DIR)")
    parser.add_argument("--keep_tmp", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    # Bazel ends a test that runs past its timeout with SIGTERM: stop the
    # server and Chromium (own process groups) on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("FAILED: terminated (timeout?)"))

    shared, reason = find_shared(args.shared_dir, [PHOTO, CROP, os.path.join(MTCNN, "pnet.pt")])
    if shared is None:
        print("SKIPPED web_ui_test: " + reason, flush=True)
        return 0

    chromium = find_chromium()
    if chromium is None:
        print("FAILED: chromium is not installed (apt-get install chromium; tools/setup.sh installs it)", flush=True)
        return 1

    out_dir = args.out_dir or os.environ.get("TEST_UNDECLARED_OUTPUTS_DIR")
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
    tmp_dir = tempfile.mkdtemp(prefix="web_ui_test.", dir=os.environ.get("TEST_TMPDIR"))
    server = browser = None
    ok = False
    try:
        url = args.url.rstrip("/") if args.url else None
        if url is None:
            server_bin = args.server or runfile("serving/server")
            maker = args.make_test_model or runfile("serving/testing/make_test_model")
            check(server_bin and maker, "//serving:server or //serving/testing:make_test_model not in the runfiles")
            # No spec file beside the weights: the config names the user's
            # spec (the path of reference checkpoints, which have none).
            made = subprocess.run([maker, "--output_dir=" + tmp_dir, "--num_classes=%d" % len(CLASSES), "--with_spec=false"],
                                  capture_output=True, text=True, timeout=300)
            check(made.returncode == 0, "make_test_model failed:\n%s%s" % (made.stdout, made.stderr))
            checkpoint = made.stdout.strip().splitlines()[-1]
            spec_path = os.path.join(tmp_dir, "given.spec.pbtxt")
            with open(spec_path, "w") as f:
                f.write('model { backbone: RESNET18 num_classes: %d }\n' % len(CLASSES))
                for name in CLASSES:
                    f.write('class_names: "%s"\n' % name)
                f.write('input { resize: 256 crop: 224 }\n')
            config_path = os.path.join(tmp_dir, "server_config.pbtxt")
            with open(config_path, "w") as f:
                f.write('model_path: %s\n' % json.dumps(checkpoint))
                f.write('model_spec: %s\n' % json.dumps(spec_path))
                f.write('detector_dir: %s\n' % json.dumps(os.path.join(shared, MTCNN)))
                f.write('host: "127.0.0.1"\nport: 0\nnum_threads: 2\nhttp_threads: 4\n')
            server = Server(server_bin, config_path, os.path.join(out_dir or tmp_dir, "server.log"))
            url = server.wait_ready(180)
            log("server ready at", url)

        profile = os.path.join(tmp_dir, "chromium-profile")
        os.makedirs(profile)
        browser = Browser(chromium, profile, os.path.join(out_dir or tmp_dir, "chromium.log"))
        browser.call("Browser.getVersion", session=False, timeout=60)
        browser.open_page()
        run_page_checks(browser, url, shared, out_dir, tmp_dir)
        ok = True
    except TestFailure as e:
        print("FAILED: %s" % e, flush=True)
        if server is not None:
            print("--- server log (tail) ---\n" + server.log_text()[-4000:], flush=True)
    finally:
        if browser is not None:
            browser.close()
        if server is not None:
            server.stop()
        if not args.keep_tmp:
            shutil.rmtree(tmp_dir, ignore_errors=True)
    if ok:
        print("PASSED web_ui_test", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
