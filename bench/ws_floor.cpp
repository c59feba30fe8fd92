// A minimal WebSocket load client, to check `evstream loadtest` as an instrument: one thread,
// one epoll, plain sockets, no libwebsockets and no evstream code. N subscribers on /ws/events
// and one publisher on /ws/publish sending {"t":<steady µs>,"pad":...} at a rate; prints one
// JSON line with the publish -> receive latency of every delivery. Loopback, ws:// only.
//   build/ws_floor PORT CLIENTS RATE SIZE SECONDS      (bench/serve_bench.sh scenario m)
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

std::int64_t now_us() {
  using namespace std::chrono;
  return duration_cast<microseconds>(steady_clock::now().time_since_epoch()).count();
}

[[noreturn]] void die(const char* what) {
  std::perror(what);
  std::exit(1);
}

// Connects and upgrades (blocking, before the run starts); the socket is non-blocking after.
int open_websocket(int port, const char* path) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) die("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) die("connect");
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  const std::string request =
      std::string("GET ") + path +
      " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
      "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
      "Sec-WebSocket-Version: 13\r\n\r\n";
  if (send(fd, request.data(), request.size(), 0) != static_cast<ssize_t>(request.size())) {
    die("send");
  }
  std::string response;
  char c = 0;
  while (response.find("\r\n\r\n") == std::string::npos) {  // a byte at a time: nothing past it
    if (recv(fd, &c, 1, 0) != 1) die("upgrade");
    response += c;
  }
  if (response.compare(0, 12, "HTTP/1.1 101") != 0) {
    std::fprintf(stderr, "upgrade refused: %s\n", response.c_str());
    std::exit(1);
  }
  fcntl(fd, F_SETFL, O_NONBLOCK);
  return fd;
}

// A masked client text frame (mask 0: the payload goes as is).
std::string client_frame(const std::string& payload) {
  std::string frame(1, static_cast<char>(0x81));
  if (payload.size() < 126) {
    frame += static_cast<char>(0x80 | payload.size());
  } else {
    frame += static_cast<char>(0x80 | 126);
    frame += static_cast<char>(payload.size() >> 8);
    frame += static_cast<char>(payload.size() & 0xff);
  }
  frame.append(4, '\0');
  return frame + payload;
}

struct Subscriber {
  int fd = -1;
  std::string buffer;
};

// Takes every complete frame out of `buffer`, recording the latency of each event in it.
void take_frames(std::string& buffer, std::int64_t now, std::vector<std::int64_t>& latencies) {
  std::size_t at = 0;
  while (buffer.size() - at >= 2) {
    const auto* p = reinterpret_cast<const unsigned char*>(buffer.data() + at);
    std::size_t header = 2;
    std::uint64_t length = p[1] & 0x7f;
    if (length == 126) {
      if (buffer.size() - at < 4) break;
      length = (std::uint64_t{p[2]} << 8) | p[3];
      header = 4;
    } else if (length == 127) {
      if (buffer.size() - at < 10) break;
      length = 0;
      for (int i = 0; i < 8; ++i) length = (length << 8) | p[2 + i];
      header = 10;
    }
    if (buffer.size() - at < header + length) break;
    const std::string_view payload(buffer.data() + at + header, length);
    if (payload.find("\"type\":\"event\"") != std::string_view::npos) {
      const auto t = payload.find("\"t\":");
      if (t != std::string_view::npos) {
        latencies.push_back(now - std::strtoll(payload.data() + t + 4, nullptr, 10));
      }
    }
    at += header + length;
  }
  buffer.erase(0, at);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: ws_floor PORT CLIENTS RATE SIZE SECONDS\n");
    return 2;
  }
  const int port = std::atoi(argv[1]);
  const int clients = std::atoi(argv[2]);
  const double rate = std::atof(argv[3]);
  const std::size_t size = static_cast<std::size_t>(std::atoll(argv[4]));
  const std::int64_t duration_us = static_cast<std::int64_t>(std::atof(argv[5]) * 1e6);

  const int epoll = epoll_create1(0);
  std::vector<Subscriber> subscribers(static_cast<std::size_t>(clients));
  for (int i = 0; i < clients; ++i) {
    subscribers[i].fd = open_websocket(port, "/ws/events");
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.u32 = static_cast<std::uint32_t>(i);
    epoll_ctl(epoll, EPOLL_CTL_ADD, subscribers[i].fd, &event);
  }
  const int publisher = open_websocket(port, "/ws/publish");
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.u32 = static_cast<std::uint32_t>(clients);  // acks: read and dropped
  epoll_ctl(epoll, EPOLL_CTL_ADD, publisher, &event);

  const std::string pad(size > 48 ? size - 48 : 0, 'x');
  std::vector<std::int64_t> latencies;
  latencies.reserve(
      static_cast<std::size_t>(rate * static_cast<double>(duration_us) / 1e6 * clients) + 16);
  std::vector<epoll_event> ready(256);
  std::vector<char> chunk(64 * 1024);
  const std::int64_t start = now_us();
  const std::int64_t end = start + duration_us;
  const std::int64_t drain_end = end + 2'000'000;
  std::int64_t sent = 0;
  for (std::int64_t now = start; now < drain_end; now = now_us()) {
    const auto due = static_cast<std::int64_t>(static_cast<double>(now - start) * rate / 1e6) + 1;
    while (now < end && sent < due) {
      const std::string frame =
          client_frame(R"({"type":"event","data":{"t":)" + std::to_string(now_us()) +
                       R"(,"pad":")" + pad + "\"}}");
      if (send(publisher, frame.data(), frame.size(), 0) != static_cast<ssize_t>(frame.size())) {
        die("publish");
      }
      ++sent;
    }
    const std::int64_t next =
        start + static_cast<std::int64_t>(static_cast<double>(sent) * 1e6 / rate);
    const int timeout_ms =
        now < end ? static_cast<int>(std::max<std::int64_t>(0, next - now) / 1000) : 100;
    const int n = epoll_wait(epoll, ready.data(), static_cast<int>(ready.size()), timeout_ms);
    for (int i = 0; i < n; ++i) {
      const std::uint32_t index = ready[i].data.u32;
      const int fd =
          index == static_cast<std::uint32_t>(clients) ? publisher : subscribers[index].fd;
      const ssize_t got = recv(fd, chunk.data(), chunk.size(), 0);
      if (got <= 0) continue;
      if (fd == publisher) continue;
      subscribers[index].buffer.append(chunk.data(), static_cast<std::size_t>(got));
      take_frames(subscribers[index].buffer, now_us(), latencies);
    }
    if (now >= end && static_cast<std::int64_t>(latencies.size()) >= sent * clients) break;
  }
  std::sort(latencies.begin(), latencies.end());
  const auto at = [&](double q) {
    return latencies.empty()
               ? 0
               : latencies[static_cast<std::size_t>(q * static_cast<double>(latencies.size() - 1))];
  };
  std::printf(
      "{\"published\": %lld, \"received\": %zu, \"expected\": %lld, \"p50_us\": %lld, "
      "\"p99_us\": %lld, \"max_us\": %lld}\n",
      static_cast<long long>(sent), latencies.size(), static_cast<long long>(sent * clients),
      static_cast<long long>(at(0.5)), static_cast<long long>(at(0.99)),
      static_cast<long long>(at(1.0)));
  return 0;
}
