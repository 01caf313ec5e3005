"""What radios are attached: SoapySDR enumeration in protocol terms.

Only drivers that look on local buses are asked by default. Enumerating everything
(SoapySDR.Device.enumerate("")) would also run the network finders (SoapyRemote's
multicast discovery, UHD's broadcast), which an agent must not do unasked.

Real radios come first, in the order found: a hub that starts a session without naming a
device takes the first one an agent advertises. The simulated radio (riasim, protocol name
`mock`) is looked for only when asked (`simulator=True`, `ria_agent.py ... --simulator`), and last.
"""

from ..wire import devices

LOCAL_DRIVERS = ("rtlsdr", "hackrf", "bladerf", "airspy")
NETWORK_DRIVERS = ("uhd", "plutosdr", "lime")


def detect(enumerate_args=None, network=False, simulator=False):
    """A list of {name, driver, label, serial?, uri?} for the devices found now, real radios first.

    enumerate_args: SoapySDR args to filter with (e.g. "driver=rtlsdr"); by default every
    local driver in turn, plus the network ones when network=True, plus the simulator when
    simulator=True.
    """
    import SoapySDR

    if enumerate_args is None:
        drivers = LOCAL_DRIVERS + (NETWORK_DRIVERS if network else ()) + ((devices.SIMULATOR_DRIVER,) if simulator else ())
        queries = [f"driver={d}" for d in drivers]
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


def names(found):
    """Protocol device names for the heartbeat, each once, in the order found."""
    return list(dict.fromkeys(d["name"] for d in found))


def hardware_names(enumerate_args=None, simulator=False):
    """Protocol device names of the devices attached now, each once, real radios first."""
    return names(detect(enumerate_args, simulator=simulator))


def device_args(entry):
    """SoapySDR args that open exactly this detected device."""
    args = f"driver={entry['driver']}"
    for key in ("serial", "uri"):
        if entry.get(key):
            return f"{args},{key}={entry[key]}"
    return args

