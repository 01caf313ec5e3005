"""Where GNU Radio Companion draws each block of a .grc, approximately, to find blocks drawn over each other.

The flowgraph is loaded with GRC's own core (the code grcc runs), so which parameters and ports are visible
is GRC's answer: a parameter is drawn on the block unless its `hide` evaluates to part or all, a port unless
hidden. Only the text measures are estimated, from GRC's constants (gnuradio/grc/gui/Constants.py) and the
widths Pango gives its fonts (measured once: Sans 8 bold about 7 px a character, Sans 7.5 about 6.2 px):

  width  = max(7 * len(title), 6.2 * longest "Label: value" line) + 2 * 7 padding, up to the 8 px grid
  height = max(13 + 7 * 2 + 16 * visible lines,        the title and one 13+3 px line per parameter
               32 * ports on the busier side)           PORT_SEPARATION, less a port's own height, plus borders
  ports stick out on the left (inputs) and right (outputs): max(20, 6 * len(port label) + 4) px

A value is shown as GRC shows it: an option's label, else the text cut to max(27 - len(label), 3) characters.
Comments under blocks are not counted.
"""

import math
import os

from gnuradio import gr
from gnuradio.grc.core import Messages
from gnuradio.grc.core.platform import Platform

GRID = 8
PADDING = 7
TITLE_PX = 7.0
PARAM_PX = 6.2
LINE_PX = 16  # 13 px of text and LABEL_SEPARATION
PORT_SEPARATION = 32


class _Quiet:
    def write(self, _):
        pass


def platform():
    """GRC's platform with every block library GRC would load (GRC_BLOCKS_PATH included)."""
    Messages.register_messenger(_Quiet().write)
    p = Platform(name="gr-ria layout check", prefs=gr.prefs(), version=gr.version(),
                 version_parts=(gr.major_version(), gr.api_version(), gr.minor_version()))
    p.build_library()
    return p


def load(platform, path):
    flow_graph = platform.make_flow_graph()
    flow_graph.grc_file_path = os.path.abspath(path)
    flow_graph.import_data(platform.parse_flow_graph(path))
    flow_graph.rewrite()
    flow_graph.validate()
    return flow_graph


def _shown_value(param):
    value = param.get_value()
    if value in param.options:
        return str(param.options[value])
    limit = max(27 - len(param.name), 3)
    return value if len(value) <= limit else value[:limit // 2 - 3] + "..." + value[-limit // 2:]


def visible_lines(block):
    return [f"{p.name}: {_shown_value(p)}" for p in block.params.values() if p.hide not in ("all", "part")]


def _port_width(port):
    return max(20, 6 * len(port.name or "") + 4)


def _up_to_grid(v):
    return GRID * math.ceil(v / GRID)


def box(block):
    """(left, top, right, bottom) in canvas pixels, ports included."""
    lines = visible_lines(block)
    width = max(TITLE_PX * len(block.label), max((PARAM_PX * len(l) for l in lines), default=0)) + 2 * PADDING
    height = 13 + 2 * PADDING + LINE_PX * len(lines)
    sinks, sources = block.active_sinks, block.active_sources
    height = max(height, PORT_SEPARATION * max(len(sinks), len(sources)))
    width, height = _up_to_grid(width), _up_to_grid(height)
    left_ports = max((_port_width(p) for p in sinks), default=0)
    right_ports = max((_port_width(p) for p in sources), default=0)
    x, y = block.states["coordinate"]
    if block.states.get("rotation", 0) in (90, 270):
        width, height = height, width
        left_ports, right_ports = 0, 0
        y -= max((_port_width(p) for p in list(sinks) + list(sources)), default=0)
        height += 2 * max((_port_width(p) for p in list(sinks) + list(sources)), default=0)
    elif block.states.get("rotation", 0) == 180:
        left_ports, right_ports = right_ports, left_ports
    return (x - left_ports, y, x + width + right_ports, y + height)


def overlaps(flow_graph):
    """Every pair of enabled blocks whose boxes share any area: [(name, name, box, box)]."""
    boxes = [(b.name, box(b)) for b in flow_graph.blocks if b.enabled]
    found = []
    for i, (name_a, a) in enumerate(boxes):
        for name_b, b in boxes[i + 1:]:
            if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]:
                found.append((name_a, name_b, a, b))
    return found
