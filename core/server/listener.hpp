#pragma once
// The listening sockets of serve --threads N (N > 1). libwebsockets 4.1 puts SO_REUSEPORT on its
// listening socket only when one context runs several service threads (count_threads > 1), which
// Debian's build (LWS_MAX_SMP 1) cannot, so LWS_SERVER_OPTION_ALLOW_LISTEN_SHARE does nothing
// there. Instead evstream opens N sockets itself, bound to one address with SO_REUSEPORT (the
// kernel spreads new connections over them); each service thread watches one from its own
// lws_context and hands what it accepts to lws (Service::accept_connections).
#include <cstddef>
#include <string>
#include <vector>

namespace evstream {

// Owns one listening socket until it is handed to lws (release()), which then closes it.
class ListenSocket {
 public:
  ListenSocket() = default;
  explicit ListenSocket(int fd) : m_fd(fd) {}
  ~ListenSocket();
  ListenSocket(ListenSocket&& other) noexcept : m_fd(other.release()) {}
  ListenSocket& operator=(ListenSocket&& other) noexcept;
  ListenSocket(const ListenSocket&) = delete;
  ListenSocket& operator=(const ListenSocket&) = delete;

  int fd() const { return m_fd; }
  int release();     // gives up ownership; returns the fd
  int port() const;  // the port it is bound to

 private:
  int m_fd = -1;
};

// Opens `count` listening sockets on host:port (host an IPv4 address, or an interface's name as
// lws takes it) sharing the port; port 0:
// the kernel picks a free one for the first and the others join it. Throws Error saying why it
// cannot, also when another process already listens there (even one that shares with
// SO_REUSEPORT: a second serve on the same port would otherwise split the connections silently).
std::vector<ListenSocket> open_shared_listeners(const std::string& host, int port,
                                                std::size_t count);

// One connection from a listening socket, non-blocking, with the options lws' own listener sets
// on what it accepts (TCP_NODELAY); -1 with errno when none could be taken.
int accept_connection(int listen_fd);

}  // namespace evstream
