#include "hub_url.h"

#include <cctype>
#include <stdexcept>

namespace gr {
namespace ria {

namespace {

std::string percent_encode(const std::string& s)
{
    static const char* hex = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : s) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~')
            out += static_cast<char>(c);
        else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

} // namespace

std::string redact_url(const std::string& url)
{
    std::string out = url;
    size_t q = out.find('?');
    while (q != std::string::npos) {
        size_t key = q + 1;
        if (out.compare(key, 6, "token=") == 0) {
            size_t value = key + 6;
            size_t end = out.find('&', value);
            out.replace(value, (end == std::string::npos ? out.size() : end) - value, "***");
        }
        q = out.find('&', key);
    }
    return out;
}

hub_url hub_url::parse(const std::string& url)
{
    hub_url u;
    std::string rest;
    if (url.rfind("ws://", 0) == 0)
        rest = url.substr(5);
    else if (url.rfind("wss://", 0) == 0) {
        u.tls = true;
        rest = url.substr(6);
    } else
        throw std::invalid_argument("hub URL must start with ws:// or wss://, got '" + redact_url(url) + "'");
    size_t slash = rest.find_first_of("/?");
    std::string authority = rest.substr(0, slash);
    u.target = slash == std::string::npos ? "/" : rest.substr(slash);
    if (u.target[0] == '?')
        u.target = "/" + u.target;
    if (authority.find('@') != std::string::npos)
        throw std::invalid_argument("hub URL must not carry user:password@; give the token instead");
    if (!authority.empty() && authority[0] == '[') {
        size_t close = authority.find(']');
        if (close == std::string::npos)
            throw std::invalid_argument("hub URL has an unclosed '[' in its host");
        u.host = authority.substr(1, close - 1);
        if (close + 1 < authority.size() && authority[close + 1] == ':')
            u.port = authority.substr(close + 2);
    } else {
        size_t colon = authority.rfind(':');
        u.host = authority.substr(0, colon);
        if (colon != std::string::npos)
            u.port = authority.substr(colon + 1);
    }
    if (u.host.empty())
        throw std::invalid_argument("hub URL has no host: '" + redact_url(url) + "'");
    if (u.port.empty())
        u.port = u.tls ? "443" : "80";
    for (char c : u.port)
        if (!std::isdigit(static_cast<unsigned char>(c)) || u.port.size() > 5)
            throw std::invalid_argument("hub URL port must be a number, got '" + u.port + "'");
    if (std::stoul(u.port) == 0 || std::stoul(u.port) > 65535)
        throw std::invalid_argument("hub URL port must be 1 to 65535, got " + u.port);
    u.host_header = authority;
    return u;
}

std::vector<std::string> hub_url::parse_list(const std::string& urls)
{
    constexpr size_t MAX_URLS = 64;
    std::vector<std::string> out;
    std::string cur;
    for (size_t i = 0; i <= urls.size(); ++i) {
        const char c = i < urls.size() ? urls[i] : ' ';
        if (c == ',' || std::isspace(static_cast<unsigned char>(c))) {
            if (!cur.empty()) {
                if (out.size() == MAX_URLS)
                    throw std::invalid_argument("hub URL list has more than " + std::to_string(MAX_URLS) + " URLs");
                parse(cur);
                out.push_back(cur);
                cur.clear();
            }
        } else
            cur += c;
    }
    if (out.empty())
        throw std::invalid_argument("hub URL is empty: give a ws:// or wss:// URL");
    return out;
}

std::string hub_url::with_token(const std::string& url, const std::string& token)
{
    return url + (url.find('?') == std::string::npos ? "?" : "&") + "token=" + percent_encode(token);
}

} // namespace ria
} // namespace gr
