#include "ws_connection.h"

#include "monotonic_clock.h"
#include "tcp_progress.h"

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <type_traits>

namespace gr {
namespace ria {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;
using boost::system::error_code;

namespace {

// The io_context's own executor, not the type-erased any_io_executor of beast::tcp_stream: every
// operation on the hot path (one write per frame) would otherwise copy and destroy an erased executor.
using tcp_layer = beast::basic_stream<tcp, net::io_context::executor_type, beast::unlimited_rate_policy>;
using plain_stream = tcp_layer;
using tls_stream = beast::ssl_stream<tcp_layer>;

std::string seconds(std::chrono::milliseconds ms)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%g s", ms.count() / 1000.0);
    return buf;
}

template <class Next>
class connection final : public ws_connection, public std::enable_shared_from_this<connection<Next>>
{
public:
    template <class... StreamArgs>
    connection(net::io_context& ioc, const connection_settings& s, connection_events e, StreamArgs&&... args)
        : d_s(s),
          d_events(std::move(e)),
          d_ws(std::forward<StreamArgs>(args)...),
          d_resolver(ioc),
          d_close_timer(ioc),
          d_deadline(ioc)
    {
    }

    void run() override
    {
        // One budget for resolve, connect, TLS and the upgrade together.
        d_deadline.expires_after(d_s.handshake_timeout);
        d_deadline.async_wait([self = this->shared_from_this()](error_code ec) {
            if (!ec && !self->d_open && !self->d_ended) {
                self->end("no answer from the hub within " + seconds(self->d_s.handshake_timeout) + " (" +
                              self->d_stage + ")",
                          false);
                self->shut();
            }
        });
        d_stage = "resolve";
        d_resolver.async_resolve(d_s.url.host, d_s.url.port,
                                 [self = this->shared_from_this()](error_code ec, tcp::resolver::results_type r) {
                                     self->on_resolve(ec, r);
                                 });
    }

    void write(bool text, const void* data, size_t size, write_handler handler) override
    {
        d_ws.text(text);
        d_ws.async_write(net::buffer(data, size),
                         [self = this->shared_from_this(), h = std::move(handler)](error_code ec, size_t n) {
                             if (ec)
                                 self->fail(ec, "write");
                             h(ec, n);
                         });
    }

    void close(std::chrono::milliseconds limit) override
    {
        if (d_ended)
            return;
        if (!d_open) {
            abort_quietly();
            return;
        }
        d_closing = true;
        d_close_timer.expires_after(limit);
        d_close_timer.async_wait([self = this->shared_from_this()](error_code ec) {
            if (!ec)
                self->abort_quietly();
        });
        d_ws.async_close(websocket::close_code::normal,
                         [self = this->shared_from_this()](error_code) { self->abort_quietly(); });
    }

    void abort(const std::string& why) override
    {
        end(why, false);
        shut();
    }

    void drop() override
    {
        d_ended = true;
        shut();
    }

private:
    void abort_quietly()
    {
        end("closed by the agent", true);
        shut();
    }

    link_health health() const override
    {
        link_health h;
        h.last_received = d_paused ? monotonic_s() : d_last_received;
        auto& sock = beast::get_lowest_layer(const_cast<websocket::stream<Next>&>(d_ws)).socket();
        if (sock.is_open()) {
            h.bytes_acked = tcp_bytes_acked(sock.native_handle());
            h.unacked = tcp_unacked_bytes(sock.native_handle());
        }
        return h;
    }

    void ping() override
    {
        if (!d_open || d_ended || d_pinging)
            return;
        d_pinging = true;
        d_ws.async_ping({}, [self = this->shared_from_this()](error_code) { self->d_pinging = false; });
    }

    uint16_t hub_close_code() const override { return d_hub_close_code; }

    void shut()
    {
        d_deadline.cancel();
        d_close_timer.cancel();
        d_resolver.cancel();
        error_code ignored;
        auto& sock = beast::get_lowest_layer(d_ws).socket();
        sock.shutdown(tcp::socket::shutdown_both, ignored);
        sock.close(ignored);
    }

    void end(const std::string& why, bool quiet)
    {
        if (d_ended)
            return;
        d_ended = true;
        d_open = false;
        if (d_events.ended)
            d_events.ended(why, quiet);
    }

    void fail(error_code ec, const char* stage)
    {
        if (d_ended)
            return;
        const bool ours = d_closing || ec == net::error::operation_aborted;
        end(ours ? std::string("closed by the agent") : describe(ec, stage), ours);
        shut();
    }

    std::string describe(error_code ec, const std::string& stage)
    {
        if (ec == beast::error::timeout)
            return "no answer from the hub within " + seconds(d_s.handshake_timeout) + " (" + stage + ")";
        if (ec == websocket::error::upgrade_declined) {
            const unsigned code = d_response.result_int();
            if (code == 401 || code == 403)
                return "the hub refused the agent token (HTTP " + std::to_string(code) + "); register again";
            return "the hub answered HTTP " + std::to_string(code) + " instead of a WebSocket";
        }
        // A close frame that arrived counts even when the read failed after it: a hub that shuts the socket
        // without waiting for the close reply fails the write of that reply (ENOTCONN, EPIPE).
        if (ec == websocket::error::closed || d_ws.reason().code != websocket::close_code::none) {
            const auto& r = d_ws.reason();
            d_hub_close_code = static_cast<uint16_t>(r.code);
            return "connection closed by the hub (" + std::to_string(r.code) +
                   (r.reason.empty() ? "" : " " + std::string(r.reason.c_str())) + ")";
        }
        if constexpr (std::is_same_v<Next, tls_stream>) {
            if (stage == "TLS handshake") {
                const long verify = SSL_get_verify_result(d_ws.next_layer().native_handle());
                if (verify != X509_V_OK)
                    return std::string("the hub's TLS certificate is not trusted (") +
                           X509_verify_cert_error_string(verify) +
                           "); give the hub's CA file, or use insecure mode only for testing";
                return "TLS handshake with the hub failed: " + ec.message();
            }
        }
        if (stage == "resolve")
            return "cannot resolve " + d_s.url.host + ": " + ec.message();
        if (stage == "connect")
            return "cannot connect to " + d_s.url.host_header + ": " + ec.message();
        return "connection lost (" + stage + "): " + ec.message();
    }

    void on_resolve(error_code ec, const tcp::resolver::results_type& results)
    {
        if (ec)
            return fail(ec, "resolve");
        d_stage = "connect";
        beast::get_lowest_layer(d_ws).async_connect(results,
                                [self = this->shared_from_this()](error_code ec, const tcp::endpoint&) {
                                    self->on_connect(ec);
                                });
    }

    void on_connect(error_code ec)
    {
        if (ec)
            return fail(ec, "connect");
        // Nagle stays on (no TCP_NODELAY): with IQ streaming, the kernel packs small frames into
        // full segments, and the hub's reader wakes less often (1024-sample frames into aiohttp:
        // median 156 against 138 MS/s, interleaved). A lone control message still goes at once;
        // one that follows another unacknowledged small one waits at most for that ACK.
        if constexpr (std::is_same_v<Next, tls_stream>) {
            SSL* ssl = d_ws.next_layer().native_handle();
            error_code not_ip;
            net::ip::make_address(d_s.url.host, not_ip);
            if (not_ip) { // a name: SNI, and the certificate must be for that name
                SSL_set_tlsext_host_name(ssl, d_s.url.host.c_str());
                SSL_set1_host(ssl, d_s.url.host.c_str());
            } else {
                X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), d_s.url.host.c_str());
            }
            d_stage = "TLS handshake";
            d_ws.next_layer().async_handshake(
                net::ssl::stream_base::client,
                [self = this->shared_from_this()](error_code ec) {
                    if (ec)
                        return self->fail(ec, "TLS handshake");
                    self->upgrade();
                });
        } else {
            upgrade();
        }
    }

    void upgrade()
    {
        d_stage = "WebSocket handshake";
        // Dead links are the transport's business (pings, and the peer's TCP acknowledgements):
        // Beast's idle timeout would count only what arrives, and a slow uplink with a full send
        // buffer delays every pong behind seconds of IQ.
        websocket::stream_base::timeout t;
        t.handshake_timeout = d_s.handshake_timeout;
        t.idle_timeout = websocket::stream_base::none();
        t.keep_alive_pings = false;
        d_ws.set_option(t);
        d_ws.control_callback([this](websocket::frame_type, beast::string_view) { d_last_received = monotonic_s(); });
        d_ws.set_option(websocket::stream_base::decorator([auth = d_s.authorization](websocket::request_type& req) {
            req.set(http::field::user_agent, "gr-ria");
            if (!auth.empty())
                req.set(http::field::authorization, auth);
        }));
        d_ws.read_message_max(d_s.max_message_bytes);
        // A large frame goes out in fragments of the write buffer (masking copies through it), and
        // Beast sends its keep-alive ping and its pongs between fragments: on a slow uplink a
        // big frame does not hold the ping back until the link looks dead.
        d_ws.auto_fragment(true);
        d_ws.write_buffer_bytes(128 * 1024);
        d_ws.async_handshake(d_response, d_s.url.host_header, d_s.url.target,
                             [self = this->shared_from_this()](error_code ec) {
                                 if (ec)
                                     return self->fail(ec, "WebSocket handshake");
                                 self->d_open = true;
                                 self->d_last_received = monotonic_s();
                                 self->d_deadline.cancel();
                                 if (self->d_events.opened)
                                     self->d_events.opened();
                                 self->read();
                             });
    }

    void read()
    {
        d_ws.async_read(d_buffer, [self = this->shared_from_this()](error_code ec, size_t n) {
            if (ec)
                return self->fail(ec, "read");
            if (self->d_ended)
                return;
            self->d_last_received = monotonic_s();
            bool more = true;
            if (self->d_ws.got_text()) {
                std::string text = beast::buffers_to_string(self->d_buffer.data());
                self->d_buffer.consume(n);
                if (self->d_events.text)
                    self->d_events.text(std::move(text));
            } else {
                const auto data = self->d_buffer.cdata();
                if (self->d_events.binary)
                    more = self->d_events.binary(data.data(), data.size());
                self->d_buffer.consume(n);
            }
            if (self->d_ended)
                return;
            if (more)
                self->read();
            else
                self->d_paused = true;
        });
    }

    void resume_reading() override
    {
        if (!d_paused || d_ended)
            return;
        d_paused = false;
        d_last_received = monotonic_s();
        read();
    }

    connection_settings d_s;
    connection_events d_events;
    websocket::stream<Next> d_ws;
    tcp::resolver d_resolver;
    net::steady_timer d_close_timer;
    net::steady_timer d_deadline; // of the whole handshake
    std::string d_stage;
    double d_last_received = 0;
    bool d_pinging = false;
    websocket::response_type d_response;
    beast::flat_buffer d_buffer;
    bool d_open = false;
    bool d_paused = false; // reading stopped by the binary handler
    bool d_closing = false;
    bool d_ended = false;
    uint16_t d_hub_close_code = 0;
};

} // namespace

std::shared_ptr<ws_connection> ws_connection::create(net::io_context& ioc,
                                                     net::ssl::context* tls_context,
                                                     const connection_settings& settings,
                                                     connection_events events)
{
    if (settings.url.tls)
        return std::make_shared<connection<tls_stream>>(ioc, settings, std::move(events), ioc.get_executor(), *tls_context);
    return std::make_shared<connection<plain_stream>>(ioc, settings, std::move(events), ioc.get_executor());
}

} // namespace ria
} // namespace gr
