"""What radios are attached: SoapySDR enumeration in protocol terms."""

from . import devices


def detect(enumerate_args=""):
    """A list of {name, driver, label, serial?, uri?} for every device SoapySDR finds now."""
    import SoapySDR

    found = []
    for kwargs in SoapySDR.Device.enumerate(enumerate_args):
        info = dict(kwargs)
        driver = info.get("driver", "")
        entry = {"name": devices.protocol_name(driver), "driver": driver, "label": info.get("label", driver)}
        for key in ("serial", "uri"):
            if info.get(key):
                entry[key] = info[key]
        found.append(entry)
    return found


def hardware_names(enumerate_args=""):
    """Protocol device names for the heartbeat, each once, in a stable order."""
    return sorted({d["name"] for d in detect(enumerate_args)})

