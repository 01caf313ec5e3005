// Linux's own tcp_info (glibc's netinet/tcp.h lacks tcpi_bytes_acked), kept apart from Asio's headers.
#include "tcp_progress.h"

#include <linux/sockios.h>
#include <netinet/in.h>
#include <linux/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <cstddef>

namespace gr {
namespace ria {

int64_t tcp_bytes_acked(int fd)
{
    tcp_info info{};
    socklen_t len = sizeof info;
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0 ||
        len < offsetof(tcp_info, tcpi_bytes_acked) + sizeof info.tcpi_bytes_acked)
        return -1;
    return static_cast<int64_t>(info.tcpi_bytes_acked);
}

int64_t tcp_unacked_bytes(int fd)
{
    int queued = 0;
    return ioctl(fd, SIOCOUTQ, &queued) == 0 ? queued : -1;
}

} // namespace ria
} // namespace gr
