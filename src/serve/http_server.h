// The HTTP transport of the service (cpp-httplib): POST /v1/recommend, GET /healthz, GET /metrics.
// The server listens before the models are loaded (healthz and recommend answer 503 until
// set_service), holds each connection on one of max_connections I/O threads while at most `threads`
// requests compute at once, drops clients that stall mid-request (read_timeout_ms) or idle
// (keep_alive_seconds), refuses bodies it would have to buffer unbounded (chunked or compressed) and
// bodies over the limit before reading them, and on stop() finishes the requests in flight before
// returning. Every error is a JSON body.
#pragma once

#include <algorithm>
#include <memory>
#include <string>

#include "serve/metrics.h"
#include "serve/service.h"

namespace twistar {

struct HttpOptions {
  /// Address to bind (0.0.0.0 for every interface).
  std::string host = "127.0.0.1";
  /// TCP port; 0 picks a free one (see HttpServer::bind).
  int port = 8080;
  /// Requests computed at once (the recommendation work; healthz and metrics do not wait for it).
  int threads = 8;
  /// Connections served at once, idle keep-alive and half-sent ones included: each holds a cheap I/O
  /// thread, not a compute slot, so slow clients cannot take the `threads` slots. Connections beyond
  /// it wait to be accepted by the next free thread (0 = 8 × threads, at least 64).
  int max_connections = 0;
  /// A request in progress that sends nothing for this long is dropped (per read).
  int read_timeout_ms = 500;
  /// An idle keep-alive connection is closed after this many seconds.
  int keep_alive_seconds = 2;

  void validate() const;
  /// max_connections with its default resolved.
  int connection_threads() const { return max_connections > 0 ? max_connections : std::max(64, 8 * threads); }
};

class HttpServer {
 public:
  /// `limits` gives the body size limit (max_body_bytes) checked before a body is read.
  HttpServer(HttpOptions options, ServeOptions limits);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  /// Binds the socket; returns the port (the chosen one for port 0). Throws Error if it cannot.
  int bind();
  /// Accepts connections on a background thread (after bind).
  void start();
  /// From now on requests are answered by `service` (healthz turns 200).
  void set_service(std::shared_ptr<const Service> service);
  /// Stops accepting, lets the requests in flight finish, joins the threads. Idempotent.
  void stop();

  const ServeMetrics& metrics() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Routes SIGINT and SIGTERM to wait_for_shutdown_signal() (instead of ending the process) and
/// ignores SIGPIPE (a client hanging up mid-answer). A signal that arrives before the wait is kept.
void install_shutdown_signals();
/// Waits for SIGINT or SIGTERM (see install_shutdown_signals) and returns its number.
int wait_for_shutdown_signal();

}  // namespace twistar
