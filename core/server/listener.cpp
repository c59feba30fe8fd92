// Shared listening sockets for several service threads; the contract is in listener.hpp.
#include "core/server/listener.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "core/util/error.hpp"

namespace evstream {

namespace {

[[noreturn]] void cannot_listen(const std::string& host, int port, const std::string& reason,
                                const char* hint =
                                    "choose another --port, or stop the process "
                                    "using it") {
  throw Error("cannot listen on " + host + ":" + std::to_string(port) + ": " + reason + " (" +
              hint + ")");
}

// A TCP socket bound to `address`, with SO_REUSEADDR (a restart must not wait out TIME_WAIT, as
// lws does for its own) and, when `share`, SO_REUSEPORT. Returns the fd, or -1 with errno set.
int bound_socket(const sockaddr_in& address, bool share) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  const int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      (share && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) ||
      bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    const int error = errno;
    close(fd);
    errno = error;
    return -1;
  }
  return fd;
}

// An IPv4 address, or (as lws takes --host too) the IPv4 address of a network interface.
bool resolve_host(const std::string& host, in_addr& out) {
  if (inet_pton(AF_INET, host.c_str(), &out) == 1) return true;
  ifaddrs* interfaces = nullptr;
  if (getifaddrs(&interfaces) != 0) return false;
  bool found = false;
  for (const ifaddrs* i = interfaces; i != nullptr && !found; i = i->ifa_next) {
    if (i->ifa_addr != nullptr && i->ifa_addr->sa_family == AF_INET && host == i->ifa_name) {
      out = reinterpret_cast<const sockaddr_in*>(i->ifa_addr)->sin_addr;
      found = true;
    }
  }
  freeifaddrs(interfaces);
  return found;
}

}  // namespace

ListenSocket::~ListenSocket() {
  if (m_fd >= 0) close(m_fd);
}

ListenSocket& ListenSocket::operator=(ListenSocket&& other) noexcept {
  if (this != &other) {
    if (m_fd >= 0) close(m_fd);
    m_fd = other.release();
  }
  return *this;
}

int ListenSocket::release() {
  return std::exchange(m_fd, -1);
}

int ListenSocket::port() const {
  sockaddr_in address{};
  socklen_t length = sizeof address;
  if (getsockname(m_fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) return 0;
  return ntohs(address.sin_port);
}

std::vector<ListenSocket> open_shared_listeners(const std::string& host, int port,
                                                std::size_t count) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  if (!resolve_host(host, address.sin_addr)) {
    cannot_listen(host, port, "not an IPv4 address or the name of a network interface",
                  "pass --host an address such as 127.0.0.1, or 0.0.0.0 for every interface");
  }
  if (port != 0) {
    // Sockets that share a port refuse a binder that does not ask to share: a plain bind finds
    // out whether anyone (another serve --threads included) listens there already.
    const int probe = bound_socket(address, false);
    if (probe < 0) cannot_listen(host, port, std::strerror(errno));
    close(probe);
  }
  std::vector<ListenSocket> sockets;
  for (std::size_t i = 0; i < count; ++i) {
    ListenSocket socket(bound_socket(address, true));
    if (socket.fd() < 0 || listen(socket.fd(), SOMAXCONN) != 0) {
      cannot_listen(host, port, std::strerror(errno));
    }
    // Port 0: the kernel chose for the first socket (never a port others share); the rest join.
    if (i == 0) address.sin_port = htons(static_cast<std::uint16_t>(socket.port()));
    port = ntohs(address.sin_port);
    sockets.push_back(std::move(socket));
  }
  return sockets;
}

int accept_connection(int listen_fd) {
  const int fd = accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0) return -1;
  // Adoption does not set it: without it Nagle holds small frames back for the peer's delayed
  // ACK, tens of milliseconds per event.
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

}  // namespace evstream
