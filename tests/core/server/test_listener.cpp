#include "core/server/listener.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>

namespace {

using namespace evstream;

// A connection accepted from a shared listener behaves like one lws' own listener accepted: small
// frames leave at once (TCP_NODELAY), and reads never block the service thread.
TEST_CASE("listener: accepted connections are non-blocking and send without Nagle's delay") {
  auto listeners = open_shared_listeners("127.0.0.1", 0, 2);
  REQUIRE(listeners.size() == 2);
  const int port = listeners[0].port();
  CHECK(listeners[1].port() == port);

  const int client = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(client >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  REQUIRE(connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);

  // The kernel put the connection on one of the two sockets: wait (bounded) for either.
  pollfd fds[2] = {{listeners[0].fd(), POLLIN, 0}, {listeners[1].fd(), POLLIN, 0}};
  REQUIRE(poll(fds, 2, 5000) > 0);
  const int listen_fd = (fds[0].revents & POLLIN) ? fds[0].fd : fds[1].fd;
  const int accepted = accept_connection(listen_fd);
  REQUIRE(accepted >= 0);
  int nodelay = 0;
  socklen_t size = sizeof nodelay;
  REQUIRE(getsockopt(accepted, IPPROTO_TCP, TCP_NODELAY, &nodelay, &size) == 0);
  CHECK(nodelay == 1);
  CHECK((fcntl(accepted, F_GETFL) & O_NONBLOCK) != 0);
  fcntl(listen_fd, F_SETFL, fcntl(listen_fd, F_GETFL) | O_NONBLOCK);  // as lws keeps it
  CHECK(accept_connection(listen_fd) == -1);                          // nothing else waits
  close(accepted);
  close(client);
}

}  // namespace
