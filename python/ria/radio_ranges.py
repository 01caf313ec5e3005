"""The ranges a radio block reports when it opens, remembered per device, and the error for a value outside
them: one piece for the RX and the TX halves of ria.control_handler."""

# the range fields of an `opened` event of ria.sdr_source / ria.sdr_sink
FIELDS = ("freq_range", "rate_range", "gain_range", "bandwidth_range")
REMEMBERED_DEVICES = 16


def from_event(event):
    return {field: event[field] for field in FIELDS if event.get(field)}


class Remembered:
    """device args -> ranges, for the radios opened lately (so a start can be checked before it opens)."""

    def __init__(self):
        self._ranges = {}

    def note(self, device, ranges):
        self._ranges.pop(device, None)
        self._ranges[device] = ranges
        while len(self._ranges) > REMEMBERED_DEVICES:
            del self._ranges[next(iter(self._ranges))]

    def get(self, device):
        return self._ranges.get(device, {})


def outside(key, value, span, unit, where):
    """The error for `value` outside `span` (None inside it, or when the span is unknown)."""
    if not span:
        return None
    lo, hi = span
    if lo <= value <= hi:
        return None
    return f"{key} {value:g} {unit} is outside {where} {lo:g} to {hi:g} {unit}"
