"""The one table between protocol device names and SoapySDR device arguments."""

# protocol name -> SoapySDR driver key
DRIVERS = {
    "sim": "riasim",
    "mock": "riasim",
    "rtlsdr": "rtlsdr",
    "hackrf": "hackrf",
    "pluto": "plutosdr",
    "usrp": "uhd",
    "bladerf": "bladerf",
    "airspy": "airspy",
    "lime": "lime",
}
ALIASES = {"blade": "bladerf"}
# SoapySDR driver key -> the protocol name a heartbeat reports
NAMES = {driver: name for name, driver in DRIVERS.items() if name != "sim"}
SIMULATOR_DRIVER = "riasim"
SIMULATOR_NAMES = tuple(name for name, driver in DRIVERS.items() if driver == SIMULATOR_DRIVER)


def soapy_args(device, identifier=""):
    """SoapySDR args for a radio_config `device` (and optional `identifier`).

    Raises ValueError naming the device when it is not a known name nor raw args.
    """
    if not isinstance(device, str) or not device.strip():
        raise ValueError(f"device must be a non-empty string, got {device!r}")
    device = device.strip()
    if "=" in device:  # raw SoapySDR args, e.g. driver=rtlsdr,serial=0001
        args = device
    else:
        name = ALIASES.get(device, device)
        if name not in DRIVERS:
            known = ", ".join(sorted(set(DRIVERS) | set(ALIASES)))
            raise ValueError(f"device {device!r} is not one of {known}, nor SoapySDR args such as 'driver=rtlsdr'")
        args = f"driver={DRIVERS[name]}"
    if identifier:
        if not isinstance(identifier, str):
            raise ValueError(f"identifier must be a string, got {identifier!r}")
        key = "uri" if ":" in identifier else "serial"
        args += f",{key}={identifier}"
    return args


def protocol_name(driver):
    """The protocol device name for a SoapySDR driver key (the key itself when unknown)."""
    return NAMES.get(driver, driver)


def driver_of(args):
    """The driver key of SoapySDR args ('driver=rtlsdr,serial=1' -> 'rtlsdr'), or ''."""
    for part in args.split(","):
        key, _, value = part.partition("=")
        if key.strip() == "driver":
            return value.strip()
    return ""


def is_simulator(args):
    """Whether SoapySDR args open the simulated radio."""
    return driver_of(args) == SIMULATOR_DRIVER


def args_from_config(clean, errors):
    """Replaces a radio_config's `device` / `identifier` in `clean` by SoapySDR args under `device_args`;
    a device that cannot be named adds its error to `errors`."""
    if "device" in clean or "identifier" in clean:
        try:
            clean["device_args"] = soapy_args(clean.get("device", "sim"), clean.get("identifier", ""))
        except ValueError as e:
            errors.append(str(e))
        clean.pop("device", None)
        clean.pop("identifier", None)
