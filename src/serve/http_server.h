// The HTTP transport of the service (cpp-httplib): POST /v1/recommend, GET /healthz, GET /metrics.
// The server listens before the models are loaded (healthz and recommend answer 503 until
// set_service), runs a pool of worker threads that each answer one request at a time, and on stop()
// finishes the requests in flight before returning. Every error is a JSON body.
#pragma once

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
  /// Worker threads: requests answered at once. An open keep-alive connection holds one.
  int threads = 8;

  void validate() const;
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
