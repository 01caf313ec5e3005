/* The hub's agent URL: ws:// or wss://, split for connecting, and redacted for logs. A setting may
 * list several (hub nodes of one cluster), separated by spaces or commas. */
#ifndef INCLUDED_RIA_HUB_URL_H
#define INCLUDED_RIA_HUB_URL_H

#include <string>
#include <vector>

#include <gnuradio/ria/api.h>

namespace gr {
namespace ria {

struct hub_url {
    bool tls = false;
    std::string host;   //!< without brackets for IPv6
    std::string port;   //!< "80"/"443" when the URL has none
    std::string target; //!< path and query, "/" at least
    std::string host_header;

    //! Throws std::invalid_argument naming what is wrong (never showing a token).
    static hub_url parse(const std::string& url);
    //! The URL with ?token=... (or &token=...) appended, percent-encoded.
    static std::string with_token(const std::string& url, const std::string& token);
    //! The URLs of a setting that lists one or several, separated by whitespace or commas; each is
    //! checked with parse() (throws std::invalid_argument naming the bad one, or saying there is none).
    static std::vector<std::string> parse_list(const std::string& urls);
};

//! The URL with the value of any `token` query parameter replaced by ***.
RIA_API std::string redact_url(const std::string& url);

} // namespace ria
} // namespace gr

#endif
