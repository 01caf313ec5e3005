"""What radios are attached: SoapySDR enumeration in protocol terms.

Only drivers that look on local buses are asked by default. Enumerating everything
(SoapySDR.Device.enumerate("")) would also run the network finders (SoapyRemote's
multicast discovery, UHD's broadcast), which an agent must not do unasked.
"""

from ..wire import devices

LOCAL_DRIVERS = ("riasim", "rtlsdr", "hackrf", "bladerf", "airspy")
NETWORK_DRIVERS = ("uhd", "plutosdr", "lime")


def detect(enumerate_args=None, network=False):
    """A list of {name, driver, label, serial?, uri?} for the devices found now.

    enumerate_args: SoapySDR args to filter with (e.g. "driver=rtlsdr"); by default every
    local driver in turn, plus the network ones when network=True.
    """
    import SoapySDR

    if enumerate_args is None:
        queries = [f"driver={d}" for d in LOCAL_DRIVERS + (NETWORK_DRIVERS if network else ())]
    else:
        queries = [enumerate_args]
    found = []
    for query in queries:
        for kwargs in SoapySDR.Device.enumerate(query):
            info = dict(kwargs)
            driver = info.get("driver", "")
            entry = {"name": devices.protocol_name(driver), "driver": driver, "label": info.get("label", driver)}
            for key in ("serial", "uri"):
                if info.get(key):
                    entry[key] = info[key]
            found.append(entry)
    return found


def hardware_names(enumerate_args=None):
    """Protocol device names for the heartbeat, each once, in a stable order."""
    return sorted({d["name"] for d in detect(enumerate_args)})
