/* Registers riasim with SoapySDR's plugin loader. */
#include "riasim_device.h"

#include <SoapySDR/Registry.hpp>
#include <stdexcept>

namespace {

std::string serial_of(const SoapySDR::Kwargs& args)
{
    auto it = args.find("serial");
    return it == args.end() || it->second.empty() ? "sim0" : it->second;
}

SoapySDR::KwargsList find_riasim(const SoapySDR::Kwargs& args)
{
    auto driver = args.find("driver");
    if (driver != args.end() && driver->second != "riasim")
        return {};
    const std::string serial = serial_of(args);
    // An unplugged radio is gone from the bus: it does not enumerate.
    if (!riasim::faults_lookup(serial)->present())
        return {};
    SoapySDR::Kwargs found{ { "driver", "riasim" },
                            { "serial", serial },
                            { "label", "RIA simulated radio [" + serial + "]" } };
    return { found };
}

SoapySDR::Device* make_riasim(const SoapySDR::Kwargs& args)
{
    const std::string serial = serial_of(args);
    if (!riasim::faults_lookup(serial)->present())
        throw std::runtime_error("riasim: device " + serial + " is unplugged (No such device)");
    return new riasim::device(args);
}

SoapySDR::Registry register_riasim("riasim", &find_riasim, &make_riasim, SOAPY_SDR_ABI_VERSION);

} // namespace
