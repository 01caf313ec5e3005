/* Registers riasim with SoapySDR's plugin loader. */
#include "riasim_device.h"

#include <SoapySDR/Registry.hpp>
#include <cstdlib>
#include <memory>
#include <stdexcept>

namespace {

std::string serial_of(const SoapySDR::Kwargs& args, const std::string& fallback)
{
    auto it = args.find("serial");
    return it == args.end() || it->second.empty() ? fallback : it->second;
}

SoapySDR::KwargsList find_as(const std::string& driver, const std::string& default_serial, const SoapySDR::Kwargs& args)
{
    auto asked = args.find("driver");
    if (asked != args.end() && asked->second != driver)
        return {};
    const std::string serial = serial_of(args, default_serial);
    // An unplugged radio is gone from the bus: it does not enumerate.
    if (!riasim::faults_lookup(serial)->present())
        return {};
    const std::string label = driver == "riasim" ? "RIA simulated radio [" + serial + "]"
                                                 : "RIA simulated radio as " + driver + " [" + serial + "]";
    return { { { "driver", driver }, { "serial", serial }, { "label", label } } };
}

SoapySDR::Device* make_as(const std::string& driver, const std::string& default_serial, SoapySDR::Kwargs args)
{
    const std::string serial = serial_of(args, default_serial);
    if (!riasim::faults_lookup(serial)->present())
        throw std::runtime_error("riasim: device " + serial + " is unplugged (No such device)");
    args["driver"] = driver;
    args["serial"] = serial;
    return new riasim::device(args);
}

SoapySDR::KwargsList find_riasim(const SoapySDR::Kwargs& args) { return find_as("riasim", "sim0", args); }
SoapySDR::Device* make_riasim(const SoapySDR::Kwargs& args) { return make_as("riasim", "sim0", args); }

SoapySDR::Registry register_riasim("riasim", &find_riasim, &make_riasim, SOAPY_SDR_ABI_VERSION);

// RIASIM_ALIAS=DRIVER (for tests): riasim also enumerates and opens as driver DRIVER (default serial
// "DRIVER0"), so that code which treats real radios apart from the simulator can be tested without one.
// Load it without DRIVER's own module (SOAPY_SDR_ROOT pointing elsewhere), or the two registrations clash.
// (SoapySDR takes plain function pointers, hence the alias in a global.)
std::string g_alias;

SoapySDR::KwargsList find_alias(const SoapySDR::Kwargs& args) { return find_as(g_alias, g_alias + "0", args); }
SoapySDR::Device* make_alias(const SoapySDR::Kwargs& args) { return make_as(g_alias, g_alias + "0", args); }

std::unique_ptr<SoapySDR::Registry> register_alias()
{
    const char* alias = std::getenv("RIASIM_ALIAS");
    if (!alias || !*alias || std::string(alias) == "riasim")
        return nullptr;
    g_alias = alias;
    return std::make_unique<SoapySDR::Registry>(g_alias, &find_alias, &make_alias, SOAPY_SDR_ABI_VERSION);
}

const std::unique_ptr<SoapySDR::Registry> alias_registry = register_alias();

} // namespace
