/* What the kernel knows of a TCP socket's delivery, for the dead-link check. */
#ifndef INCLUDED_RIA_TCP_PROGRESS_H
#define INCLUDED_RIA_TCP_PROGRESS_H

#include <cstdint>

namespace gr {
namespace ria {

//! Bytes the peer's TCP has acknowledged on this socket so far (-1: unknown).
int64_t tcp_bytes_acked(int fd);
//! Bytes sent or waiting to be sent that the peer has not acknowledged yet (-1: unknown).
int64_t tcp_unacked_bytes(int fd);

} // namespace ria
} // namespace gr

#endif
