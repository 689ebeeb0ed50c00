#include "serve/http_server.h"

#include <httplib.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
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
}

struct HttpServer::Impl {
  HttpOptions options;
  ServeOptions limits;
  httplib::Server server;
  ServeMetrics metrics;
  std::thread listener;
  std::mutex mutex;
  std::shared_ptr<const Service> service;
  bool bound = false;

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
      answer = svc->handle(req.body);
    }
    set_json(res, answer.status, answer.body);
    std::string code = answer.status == 200 ? "" : answer.body["error"].value("code", "");
    metrics.record(answer.status,
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
                   answer.plan, code);
  }

  void routes() {
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
  int threads = options.threads;
  s.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  s.set_payload_max_length(limits.max_body_bytes);
  s.set_tcp_nodelay(true);
  s.set_keep_alive_max_count(100000);
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
