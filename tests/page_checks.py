"""What the page tests look for in the live view and in its screenshots (decoded with PIL, from Debian)."""

import json
import os
import shutil

from processes import REPO

BACKGROUND = (13, 17, 23)  # the canvases' #0d1117
TICK = (201, 209, 217)  # the axis and tick colour #c9d1d9
DOC_IMAGES = os.path.join(REPO, "docs", "img")

CARDS = """(() => Array.from(document.querySelectorAll('.card')).map((el) => {
  const r = el.getBoundingClientRect(), c = el.querySelector('canvas').getBoundingClientRect();
  return {id: el.dataset.agentId, state: el.querySelector('.state').textContent, drawn: el.dataset.drawn || null,
          line: el.querySelector('.line').textContent, left: r.left, top: r.top, right: r.right, bottom: r.bottom,
          canvas: [c.left, c.top, c.width, c.height]}; }))()"""

# What the detail view drew, with the spectrum canvas's place on the page (CSS px = canvas px).
AXES = """(() => { const a = window.riaView.spectrum.axes;
  const r = document.getElementById('spectrum').getBoundingClientRect();
  return a && Object.assign({}, a, {rect: [r.left, r.top, r.width, r.height],
                                    canvasWidth: document.getElementById('spectrum').width}); })()"""


def pixel(canvas_id, x, y):
    """JavaScript for the RGB of one pixel of a canvas."""
    return (f"Array.from(document.getElementById('{canvas_id}').getContext('2d')"
            f".getImageData({int(x)}, {int(y)}, 1, 1).data.slice(0, 3))")


def region_colours(image, box):
    """The set of distinct RGB colours in box (left, top, right, bottom) of a PIL image."""
    return set(image.crop(tuple(int(v) for v in box)).convert("RGB").getdata())


def keep_for_docs(path, name):
    """RIA_DOC_IMAGES=1 copies a screenshot to docs/img/ for the README."""
    if os.environ.get("RIA_DOC_IMAGES"):
        os.makedirs(DOC_IMAGES, exist_ok=True)
        shutil.copyfile(path, os.path.join(DOC_IMAGES, name))


def click(browser, x, y, drag_to=None):
    """A real mouse click (or press, drag to drag_to and release) at page coordinates, through DevTools."""
    browser.call("Input.dispatchMouseEvent", type="mousePressed", x=x, y=y, button="left", clickCount=1)
    if drag_to is not None:
        for i in range(1, 6):
            browser.call("Input.dispatchMouseEvent", type="mouseMoved", x=x + (drag_to - x) * i / 5, y=y,
                         button="left")
        x = drag_to
    browser.call("Input.dispatchMouseEvent", type="mouseReleased", x=x, y=y, button="left", clickCount=1)


def set_input(browser, element_id, value):
    """Sets a form input (a checkbox when value is a bool) as a user would, with its change event."""
    prop = "checked" if isinstance(value, bool) else "value"
    browser.evaluate(f"(() => {{ const e = document.getElementById('{element_id}'); e.{prop} = {json.dumps(value)};"
                     " e.dispatchEvent(new Event('change')); })()")
