/* One connection attempt to the hub: resolve, TCP connect, TLS, WebSocket handshake, read loop, writes.
 * Everything runs on the transport's one io thread; a failed connection is not reused. */
#ifndef INCLUDED_RIA_WS_CONNECTION_H
#define INCLUDED_RIA_WS_CONNECTION_H

#include "hub_url.h"
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/system/error_code.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace gr {
namespace ria {

struct connection_settings {
    hub_url url;
    std::string authorization;       //!< "Bearer ..." or empty (token in the query)
    std::chrono::milliseconds handshake_timeout{ 10000 }; //!< resolve, connect, TLS and upgrade together
    size_t max_message_bytes = 1 << 20;
};

//! What the link's liveness check reads: when anything (a message, a ping, a pong) last
//! arrived, and how far the peer's TCP has acknowledged what was sent.
struct link_health {
    double last_received = 0; //!< monotonic seconds
    int64_t bytes_acked = -1; //!< the socket's total acknowledged bytes (-1: unknown)
    int64_t unacked = -1;     //!< bytes the kernel still holds for the peer (-1: unknown)
};

struct connection_events {
    std::function<void()> opened;
    std::function<void(std::string&& text)> text;
    //! A binary message; the data is valid during the call only. Returns false to pause reading
    //! (the next message stays unread, in the socket, until resume_reading()).
    std::function<bool(const void* data, size_t bytes)> binary;
    //! Called once when the connection ends, with a sentence for the operator; `quiet` for
    //! ends we caused (close, abort) that need no log line.
    std::function<void(const std::string& why, bool quiet)> ended;
};

class ws_connection
{
public:
    using write_handler = std::function<void(boost::system::error_code, size_t)>;

    //! tls_context is used (and must outlive the connection) when the URL is wss://.
    static std::shared_ptr<ws_connection> create(boost::asio::io_context& ioc,
                                                 boost::asio::ssl::context* tls_context,
                                                 const connection_settings& settings,
                                                 connection_events events);
    virtual ~ws_connection() = default;

    virtual void run() = 0;
    //! One message; the buffer must stay valid until the handler runs. One write at a time.
    virtual void write(bool text, const void* data, size_t size, write_handler handler) = 0;
    //! A WebSocket close, bounded: the TCP socket is closed after `limit` whatever the peer does.
    virtual void close(std::chrono::milliseconds limit) = 0;
    //! Ends the connection now (a dead link): pending operations fail.
    virtual void abort(const std::string& why) = 0;
    //! Closes the socket at once and quietly, without events: for when the io thread has stopped.
    virtual void drop() = 0;
    virtual link_health health() const = 0;
    //! Reads again after `binary` paused it (TCP back-pressure on the hub). While paused, the link
    //! counts as alive: nothing is read because the agent chose so.
    virtual void resume_reading() = 0;
    //! A WebSocket ping (at most one outstanding; it waits for the fragment being written).
    virtual void ping() = 0;
    //! The close code the hub ended the connection with (0: it did not close it).
    virtual uint16_t hub_close_code() const = 0;
};

} // namespace ria
} // namespace gr

#endif
