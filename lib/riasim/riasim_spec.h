/* Device-argument lists of riasim: entries separated by ';' (',' already separates SoapySDR args). */
#ifndef INCLUDED_RIASIM_SPEC_H
#define INCLUDED_RIASIM_SPEC_H

#include <sstream>
#include <string>
#include <vector>

namespace riasim {

inline std::vector<std::string> split_entries(const std::string& spec)
{
    std::vector<std::string> entries;
    std::stringstream all(spec);
    std::string entry;
    while (std::getline(all, entry, ';'))
        if (!entry.empty())
            entries.push_back(entry);
    return entries;
}

} // namespace riasim

#endif
