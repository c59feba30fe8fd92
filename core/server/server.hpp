#pragma once
// `evstream serve`: HTTP and the two WebSocket endpoints on one port, served by `threads` service
// threads (each with its own libwebsockets context and its own share of the connections; the
// caller of run() is one of them) in front of one store thread. Construction opens the store and
// binds the port (throwing evstream::Error with a clear message when it cannot); run() serves
// until request_stop().
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/store/jetstream.hpp"
#include "core/store/store.hpp"
#include "core/util/log.hpp"

namespace evstream {

struct ServerOptions {
  std::string host = "127.0.0.1";  // loopback only unless asked: a new server is not public
  int port = 8000;                 // 0 binds a free port
  // Service threads, each with its own lws_context and connections; serve's --threads defaults
  // to one per core. 1 keeps lws' own listening socket; more share the port (SO_REUSEPORT).
  std::size_t threads = 1;
  std::string db = "./evstream.db";
  Durability durability = Durability::normal;  // NORMAL already survives kill -9
  std::int64_t ping_interval_us = 30'000'000;  // clients silent for 2x this are closed
  std::size_t client_queue = 4096;             // per-subscriber bound, messages...
  std::size_t client_queue_bytes = 1u << 20;   // ...and bytes; past it: 1008 slow consumer
  std::size_t max_message_bytes = 1u << 20;    // larger inbound frames: 1009
  std::size_t max_clients = 16384;             // WebSocket connections; past it: HTTP 503
  std::optional<std::int64_t> retain_age_us;
  std::optional<std::int64_t> retain_events;
  std::string token;       // guards publishing when set
  std::string read_token;  // guards reading when set
  std::vector<std::string> allow_origins;
  std::string cert_path;
  std::string key_path;
  // Set: cluster mode. JetStream is the log of record and `db` this node's local replica.
  std::optional<JetStreamOptions> nats;
};

class Server {
 public:
  Server(ServerOptions options, Logger& logger);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The URL clients connect to, e.g. "ws://127.0.0.1:41234" (the real port when port was 0).
  std::string url() const;

  // Serves until request_stop(); then stops accepting, commits what was accepted, acks it, closes
  // every client with 1001 "going away" and returns. Must be called on one thread only; it runs
  // the other service threads and joins them before it returns.
  void run();

  // Thread-safe and async-signal-tolerant (it only sets a flag and wakes the loop).
  void request_stop();

  struct Impl;

 private:
  std::unique_ptr<Impl> m_impl;
};

}  // namespace evstream
