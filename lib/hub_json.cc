#include "hub_json.h"

#include <charconv>
#include <map>
#include <stdexcept>
#include <system_error>
#include <vector>

namespace gr {
namespace ria {
namespace hub_json {

namespace {

constexpr size_t MAX_TEXT = 64;      // of an unreadable value or key, as kept for error messages
constexpr uint8_t MARK_SUBTYPE = 82; // 'R': a binary value only this file makes (JSON text has none)

bool hex4(const std::string& s, size_t i, size_t end, unsigned& out)
{
    if (i + 4 > end)
        return false;
    out = 0;
    for (size_t k = i; k < i + 4; k++) {
        const char c = s[k];
        const int d = c >= '0' && c <= '9' ? c - '0'
                      : c >= 'a' && c <= 'f' ? c - 'a' + 10
                      : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                             : -1;
        if (d < 0)
            return false;
        out = out * 16 + unsigned(d);
    }
    return true;
}

// Does the string body s[begin, end) (between the quotes) escape a lone UTF-16 surrogate?
bool lone_surrogate(const std::string& s, size_t begin, size_t end)
{
    for (size_t i = begin; i < end; i++) {
        if (s[i] != '\\')
            continue;
        if (i + 1 >= end)
            return false;
        if (s[i + 1] != 'u') {
            i++;
            continue;
        }
        unsigned u = 0, low = 0;
        if (!hex4(s, i + 2, end, u))
            return false; // a malformed escape: the parser says so
        if (u >= 0xDC00 && u <= 0xDFFF)
            return true;
        if (u >= 0xD800 && u <= 0xDBFF) {
            if (i + 12 > end || s[i + 6] != '\\' || s[i + 7] != 'u' || !hex4(s, i + 8, end, low) ||
                low < 0xDC00 || low > 0xDFFF)
                return true;
            i += 6; // the pair's second half
        }
        i += 5;
    }
    return false;
}

bool valid_utf8(const std::string& s, size_t begin, size_t end)
{
    for (size_t i = begin; i < end;) {
        const auto c = static_cast<unsigned char>(s[i]);
        const size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
        if (n == 0 || i + n > end)
            return false;
        for (size_t k = 1; k < n; k++)
            if ((static_cast<unsigned char>(s[i + k]) >> 6) != 0x2)
                return false;
        i += n;
    }
    return true;
}

bool digit(char c) { return c >= '0' && c <= '9'; }

// A JSON number whose magnitude is beyond the largest double (it parses to infinity).
bool beyond_double(const std::string& t)
{
    size_t i = t[0] == '-' ? 1 : 0;
    const size_t int_begin = i;
    if (i >= t.size() || !digit(t[i]) || (t[i] == '0' && i + 1 < t.size() && digit(t[i + 1])))
        return false; // not JSON's number grammar: the parser says so
    while (i < t.size() && digit(t[i]))
        i++;
    const size_t int_end = i;
    size_t frac_begin = i, frac_end = i;
    if (i < t.size() && t[i] == '.') {
        frac_begin = ++i;
        while (i < t.size() && digit(t[i]))
            i++;
        frac_end = i;
        if (frac_end == frac_begin)
            return false;
    }
    long long exponent = 0;
    if (i < t.size() && (t[i] == 'e' || t[i] == 'E')) {
        i++;
        const bool negative = i < t.size() && t[i] == '-';
        if (i < t.size() && (t[i] == '+' || t[i] == '-'))
            i++;
        if (i >= t.size() || !digit(t[i]))
            return false;
        for (; i < t.size() && digit(t[i]); i++)
            exponent = std::min<long long>(exponent * 10 + (t[i] - '0'), 1000000000);
        if (negative)
            exponent = -exponent;
    }
    if (i != t.size())
        return false;
    double value = 0;
    const auto res = std::from_chars(t.data(), t.data() + t.size(), value);
    if (res.ec != std::errc::result_out_of_range)
        return false;
    // Out of range is overflow or underflow: overflow when the leading digit's power of ten is >= 0.
    for (size_t k = int_begin; k < int_end; k++)
        if (t[k] != '0')
            return static_cast<long long>(int_end - k - 1) + exponent >= 0;
    for (size_t k = frac_begin; k < frac_end; k++)
        if (t[k] != '0')
            return -static_cast<long long>(k - frac_begin + 1) + exponent >= 0;
    return false;
}

std::string clipped(const std::string& s)
{
    if (s.size() <= MAX_TEXT)
        return s;
    size_t n = MAX_TEXT;
    while (n > 0 && (static_cast<unsigned char>(s[n]) >> 6) == 0x2) // not in the middle of a character
        n--;
    return s.substr(0, n) + "...";
}

struct scanned {
    std::string text;                       // what nlohmann can parse
    std::map<size_t, std::string> unreadable; // ordinal of a string or number token -> its JSON text
};

// Replaces each string with a lone surrogate by "" and each number beyond a double by 0, noting
// which: strings and numbers are counted in text order, as the parser reports them.
scanned scan(const std::string& in)
{
    scanned out;
    out.text.reserve(in.size());
    size_t ordinal = 0;
    for (size_t i = 0; i < in.size();) {
        const char c = in[i];
        if (c == '"') {
            size_t j = i + 1;
            while (j < in.size() && in[j] != '"')
                j += in[j] == '\\' ? 2 : 1;
            if (j >= in.size()) { // unterminated: left for the parser to report
                out.text.append(in, i, std::string::npos);
                break;
            }
            if (lone_surrogate(in, i + 1, j) && valid_utf8(in, i + 1, j)) {
                out.unreadable[ordinal] = '"' + clipped(in.substr(i + 1, j - i - 1)) + '"';
                out.text += "\"\"";
            } else {
                out.text.append(in, i, j - i + 1);
            }
            ordinal++;
            i = j + 1;
        } else if (c == '-' || digit(c)) {
            size_t j = i;
            while (j < in.size() && (digit(in[j]) || in[j] == '-' || in[j] == '+' || in[j] == '.' ||
                                     in[j] == 'e' || in[j] == 'E'))
                j++;
            const std::string token = in.substr(i, j - i);
            if (beyond_double(token)) {
                out.unreadable[ordinal] = clipped(token);
                out.text += '0';
            } else {
                out.text += token;
            }
            ordinal++;
            i = j;
        } else {
            out.text += c;
            i++;
        }
    }
    return out;
}

// nlohmann's SAX interface, building the value with the unreadable tokens put back as markers.
class builder
{
public:
    builder(const std::map<size_t, std::string>& unreadable, int max_depth)
        : d_unreadable(unreadable), d_max_depth(max_depth)
    {
    }

    json result;

    bool null() { return put(nullptr); }
    bool boolean(bool v) { return put(v); }
    bool number_integer(json::number_integer_t v) { return token(v); }
    bool number_unsigned(json::number_unsigned_t v) { return token(v); }
    bool number_float(json::number_float_t v, const json::string_t&) { return token(v); }
    bool string(json::string_t& v) { return token(std::move(v)); }
    bool binary(json::binary_t& v) { return put(json::binary(std::move(v))); }
    bool start_object(std::size_t) { return open(json::object()); }
    bool end_object() { return close(); }
    bool start_array(std::size_t) { return open(json::array()); }
    bool end_array() { return close(); }

    bool key(json::string_t& k)
    {
        auto it = d_unreadable.find(d_ordinal++);
        d_key = it == d_unreadable.end() ? std::move(k) : it->second.substr(1, it->second.size() - 2);
        return true;
    }

    template <class Exception>
    bool parse_error(std::size_t, const std::string&, const Exception& e)
    {
        throw e;
    }

private:
    bool token(json v)
    {
        auto it = d_unreadable.find(d_ordinal++);
        return put(it == d_unreadable.end() ? std::move(v) : unreadable(it->second));
    }

    bool put(json v)
    {
        if (d_stack.empty()) {
            result = std::move(v);
            d_last = &result;
        } else if (d_stack.back()->is_array()) {
            d_stack.back()->push_back(std::move(v));
            d_last = &d_stack.back()->back();
        } else {
            json& slot = (*d_stack.back())[d_key]; // a repeated key: the last one counts
            slot = std::move(v);
            d_last = &slot;
        }
        return true;
    }

    bool open(json container)
    {
        if (static_cast<int>(d_stack.size()) > d_max_depth)
            throw std::length_error("message nests deeper than " + std::to_string(d_max_depth) + " levels");
        put(std::move(container));
        d_stack.push_back(d_last);
        return true;
    }

    bool close()
    {
        d_stack.pop_back();
        return true;
    }

    const std::map<size_t, std::string>& d_unreadable;
    const int d_max_depth;
    size_t d_ordinal = 0;
    std::string d_key;
    std::vector<json*> d_stack; // the open containers; only the innermost one grows
    json* d_last = nullptr;
};

} // namespace

json parse(const std::string& text, int max_depth)
{
    const scanned s = scan(text);
    builder b(s.unreadable, max_depth);
    json::sax_parse(s.text, &b);
    return std::move(b.result);
}

json unreadable(const std::string& text)
{
    return json::binary(std::vector<uint8_t>(text.begin(), text.end()), MARK_SUBTYPE);
}

bool is_unreadable(const json& value)
{
    return value.is_binary() && value.get_binary().has_subtype() && value.get_binary().subtype() == MARK_SUBTYPE;
}

std::string unreadable_text(const json& value)
{
    const auto& bytes = value.get_binary();
    return std::string(bytes.begin(), bytes.end());
}

std::string describe(const json& value)
{
    if (is_unreadable(value))
        return unreadable_text(value);
    return clipped(value.dump(-1, ' ', false, json::error_handler_t::replace));
}

} // namespace hub_json
} // namespace ria
} // namespace gr
