#include "serve/http_server.h"

#include <httplib.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>

#include "core/error.h"
#include "core/log.h"

namespace twistar {

namespace {

constexpr const char* kJson = "application/json";

void set_json(httplib::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  res.set_content(dump_json(body), kJson);
}

std::string status_code_name(int status) {
  switch (status) {
    case 400:
      return "bad_request";
    case 404:
      return "not_found";
    case 405:
      return "method_not_allowed";
    case 413:
      return "body_too_large";
    default:
      return "http_" + std::to_string(status);
  }
}

}  // namespace

void HttpOptions::validate() const {
  if (host.empty()) throw_input_error("host: must not be empty");
  if (port < 0 || port > 65535) throw_input_error("port: must be in [0, 65535], got {}", port);
  if (threads < 1) throw_input_error("threads: must be >= 1, got {}", threads);
  if (max_connections < 0 || max_connections > 100000)
    throw_input_error("max_connections: must be in [0, 100000], got {}", max_connections);
  if (max_connections > 0 && max_connections < threads)
    throw_input_error("max_connections: must be at least threads ({}), got {}", threads, max_connections);
  if (read_timeout_ms < 1 || read_timeout_ms > 600000)
    throw_input_error("read_timeout_ms: must be in [1, 600000], got {}", read_timeout_ms);
  if (keep_alive_seconds < 1 || keep_alive_seconds > 3600)
    throw_input_error("keep_alive_seconds: must be in [1, 3600], got {}", keep_alive_seconds);
}

namespace {

/// At most `n` holders at once: the compute slots of the recommendation requests.
class Slots {
 public:
  explicit Slots(int n) : free_(n) {}
  void acquire() {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait(lock, [this] { return free_ > 0; });
    --free_;
  }
  void release() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ++free_;
    }
    cv_.notify_one();
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  int free_;
};

/// The methods each path answers; other methods on these paths are 405.
const char* allowed_methods(const std::string& path) {
  if (path == "/v1/recommend") return "POST";
  if (path == "/healthz" || path == "/metrics") return "GET, HEAD";
  return nullptr;
}

}  // namespace

struct HttpServer::Impl {
  HttpOptions options;
  ServeOptions limits;
  httplib::Server server;
  ServeMetrics metrics;
  std::thread listener;
  std::mutex mutex;
  std::shared_ptr<const Service> service;
  bool bound = false;
  std::unique_ptr<Slots> compute;

  std::shared_ptr<const Service> current() {
    std::lock_guard<std::mutex> lock(mutex);
    return service;
  }

  void recommend(const httplib::Request& req, httplib::Response& res) {
    auto t0 = std::chrono::steady_clock::now();
    auto svc = current();
    ServiceAnswer answer;
    if (!svc) {
      answer = {503, error_body("not_ready", "the models are still loading; retry shortly"), ""};
    } else {
      compute->acquire();
      try {
        answer = svc->handle(req.body);
      } catch (...) {
        compute->release();
        throw;
      }
      compute->release();
    }
    set_json(res, answer.status, answer.body);
    std::string code = answer.status == 200 ? "" : answer.body["error"].value("code", "");
    metrics.record(answer.status,
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
                   answer.plan, code);
  }

  /// Answers from the headers alone what must not reach the body reader: a wrong method (405), a body
  /// it would buffer without a bound (chunked: 411; compressed: 415) or one declared over the limit
  /// (413, before a byte of it is read). The connection closes after these, as the body is unread.
  httplib::Server::HandlerResponse screen(const httplib::Request& req, httplib::Response& res) {
    auto refuse = [&](int status, const std::string& code, const std::string& message) {
      set_json(res, status, error_body(code, message));
      res.set_header("Connection", "close");
      if (req.path == "/v1/recommend") metrics.record(status, 0.0, "", code);
      return httplib::Server::HandlerResponse::Handled;
    };
    const char* allowed = allowed_methods(req.path);
    if (allowed && std::string(allowed).find(req.method) == std::string::npos) {
      res.set_header("Allow", allowed);
      return refuse(405, "method_not_allowed", fmt::format("{} {}: use {}", req.method, req.path, allowed));
    }
    if (req.has_header("Transfer-Encoding"))
      return refuse(411, "length_required", "chunked request bodies are not accepted; send Content-Length");
    const std::string encoding = req.get_header_value("Content-Encoding");
    if (!encoding.empty() && encoding != "identity")
      return refuse(415, "unsupported_encoding",
                    fmt::format("Content-Encoding '{}' is not accepted; send the JSON uncompressed", encoding));
    if (req.has_header("Content-Length")) {
      const std::string declared = req.get_header_value("Content-Length");
      size_t n = 0;
      auto [end, ec] = std::from_chars(declared.data(), declared.data() + declared.size(), n);
      if (ec != std::errc() || end != declared.data() + declared.size())
        return refuse(400, "bad_request", fmt::format("Content-Length '{}' is not a byte count", declared));
      if (n > limits.max_body_bytes)
        return refuse(413, "body_too_large",
                      fmt::format("request body of {} bytes is over the limit (max_body_bytes = {})", n,
                                  limits.max_body_bytes));
    }
    return httplib::Server::HandlerResponse::Unhandled;
  }

  void routes() {
    server.set_pre_routing_handler(
        [this](const httplib::Request& req, httplib::Response& res) { return screen(req, res); });
    server.Post("/v1/recommend", [this](const httplib::Request& req, httplib::Response& res) {
      recommend(req, res);
    });
    server.Get("/healthz", [this](const httplib::Request&, httplib::Response& res) {
      auto svc = current();
      if (svc)
        set_json(res, 200, {{"status", "ok"}, {"items", svc->items().num_items()}});
      else
        set_json(res, 503, {{"status", "loading"}});
    });
    server.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      auto svc = current();
      res.set_content(metrics.prometheus(svc != nullptr, svc ? svc->planner_gauges() : std::nullopt),
                      "text/plain; version=0.0.4");
    });
    // Errors httplib answers itself (unknown path, body over the limit) get the JSON error shape.
    server.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return;
      std::string code = status_code_name(res.status);
      std::string message =
          res.status == 413
              ? fmt::format("request body over the limit (max_body_bytes = {})",
                            limits.max_body_bytes)
              : fmt::format("{} {}: HTTP {} ({})", req.method, req.path, res.status, code);
      set_json(res, res.status, error_body(code, message));
      if (req.method == "POST" && req.path == "/v1/recommend")
        metrics.record(res.status, 0.0, "", code);
    });
    server.set_exception_handler(
        [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
          std::string what = "unknown error";
          try {
            std::rethrow_exception(ep);
          } catch (const std::exception& e) {
            what = e.what();
          } catch (...) {
          }
          spdlog::error("request failed: {}", what);
          set_json(res, 500, error_body("internal", what));
        });
  }
};

HttpServer::HttpServer(HttpOptions options, ServeOptions limits) : impl_(std::make_unique<Impl>()) {
  options.validate();
  limits.validate();
  impl_->options = options;
  impl_->limits = limits;
  auto& s = impl_->server;
  impl_->compute = std::make_unique<Slots>(options.threads);
  const size_t connections = static_cast<size_t>(options.connection_threads());
  s.new_task_queue = [connections] { return new httplib::ThreadPool(connections); };
  s.set_payload_max_length(limits.max_body_bytes);
  s.set_tcp_nodelay(true);
  s.set_keep_alive_max_count(100000);
  s.set_keep_alive_timeout(options.keep_alive_seconds);
  s.set_read_timeout(options.read_timeout_ms / 1000, (options.read_timeout_ms % 1000) * 1000);
  s.set_write_timeout(5, 0);
  impl_->routes();
}

HttpServer::~HttpServer() { stop(); }

int HttpServer::bind() {
  auto& o = impl_->options;
  int port = o.port;
  if (port == 0) {
    port = impl_->server.bind_to_any_port(o.host);
  } else if (!impl_->server.bind_to_port(o.host, port)) {
    port = -1;
  }
  if (port < 0)
    throw_error("serve: cannot listen on {}:{} (in use, or a bad host?)", o.host, o.port);
  impl_->bound = true;
  return port;
}

void HttpServer::start() {
  if (!impl_->bound) throw_error("serve: start() before bind()");
  impl_->listener = std::thread([this] { impl_->server.listen_after_bind(); });
  // stop() only reaches a server that is running; wait for it so a quick stop cannot be lost.
  for (int i = 0; i < 5000 && !impl_->server.is_running(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

void HttpServer::set_service(std::shared_ptr<const Service> service) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  impl_->service = std::move(service);
}

void HttpServer::stop() {
  if (!impl_) return;
  impl_->server.stop();
  if (impl_->listener.joinable()) impl_->listener.join();
}

const ServeMetrics& HttpServer::metrics() const { return impl_->metrics; }

namespace {
// The signal handler only writes the signal number to a pipe (async-signal-safe); the thread in
// wait_for_shutdown_signal reads it. Any thread may take the signal (libtorch's and OpenBLAS's
// pools exist before main), so masking signals would not be enough.
int shutdown_pipe[2] = {-1, -1};

void on_shutdown_signal(int sig) {
  unsigned char c = static_cast<unsigned char>(sig);
  ssize_t n = write(shutdown_pipe[1], &c, 1);
  (void)n;
}
}  // namespace

void install_shutdown_signals() {
  if (shutdown_pipe[0] < 0 && pipe(shutdown_pipe) != 0)
    throw_error("serve: cannot create the shutdown pipe: {}", std::strerror(errno));
  struct sigaction action {};
  action.sa_handler = on_shutdown_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  // A client that hangs up mid-answer must not kill the server.
  signal(SIGPIPE, SIG_IGN);
}

int wait_for_shutdown_signal() {
  unsigned char c = 0;
  while (read(shutdown_pipe[0], &c, 1) < 0 && errno == EINTR) {
  }
  return c;
}

}  // namespace twistar
