// twistar's Python binding (_twistar; python/twistar/__init__.py is the public face). Thin, as the CLI
// is: it converts arguments, releases the GIL around the library's work and turns the library's
// errors into Python's (bad input: ValueError, anything else: RuntimeError).
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "apps/commands.h"
#include "apps/fit.h"
#include "core/error.h"
#include "core/log.h"
#include "core/progress.h"
#include "core/run_lock.h"
#include "data/loader.h"
#include "serve/service.h"

namespace py = pybind11;
namespace fs = std::filesystem;

namespace twistar {
namespace {

/// nlohmann::json -> Python objects (dict, list, str, int, float, bool, None).
py::object to_python(const nlohmann::json& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::object: {
      py::dict d;
      for (const auto& [k, v] : j.items()) d[py::str(k)] = to_python(v);
      return std::move(d);
    }
    case nlohmann::json::value_t::array: {
      py::list l;
      for (const auto& v : j) l.append(to_python(v));
      return std::move(l);
    }
    case nlohmann::json::value_t::string:
      return py::str(j.get<std::string>());
    case nlohmann::json::value_t::boolean:
      return py::bool_(j.get<bool>());
    case nlohmann::json::value_t::number_integer:
      return py::int_(j.get<int64_t>());
    case nlohmann::json::value_t::number_unsigned:
      return py::int_(j.get<uint64_t>());
    case nlohmann::json::value_t::number_float:
      return py::float_(j.get<double>());
    default:
      return py::none();
  }
}

/// A loaded dataset as Python sees it: counts, ids and sequences of item indices (oldest first).
struct PyDataset {
  std::shared_ptr<const Dataset> data;

  size_t num_users() const { return data->num_users(); }
  size_t num_items() const { return data->num_items(); }
  size_t num_interactions() const { return data->num_interactions(); }
  std::string summary() const { return data->summary(); }
  std::vector<std::vector<int64_t>> sequences() const {
    std::vector<std::vector<int64_t>> out;
    out.reserve(data->sequences.size());
    for (const auto& s : data->sequences) out.emplace_back(s.begin(), s.end());
    return out;
  }
  /// Users x max_len item indices, each history right-aligned (its last max_len items), -1 before.
  py::array_t<int64_t> sequences_array(size_t max_len) const {
    if (max_len == 0) {
      for (const auto& s : data->sequences) max_len = std::max(max_len, s.size());
    }
    py::array_t<int64_t> out({data->sequences.size(), max_len});
    auto m = out.mutable_unchecked<2>();
    for (size_t u = 0; u < data->sequences.size(); ++u) {
      const auto& s = data->sequences[u];
      const size_t n = std::min(max_len, s.size());
      for (size_t t = 0; t < max_len - n; ++t) m(u, t) = -1;
      for (size_t t = 0; t < n; ++t) m(u, max_len - n + t) = s[s.size() - n + t];
    }
    return out;
  }
};

PyDataset load_dataset_py(const std::string& path, const std::optional<std::string>& format) {
  LoadOptions o;
  if (format) o.format = *format;
  std::shared_ptr<const Dataset> d;
  {
    py::gil_scoped_release release;
    d = std::make_shared<const Dataset>(load_dataset(path, o));
  }
  return PyDataset{d};
}

/// The history as raw ids (str) or item indices (int), as the HTTP API takes them.
nlohmann::json history_json(const py::sequence& history) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& h : history) {
    if (py::isinstance<py::str>(h))
      out.push_back(h.cast<std::string>());
    else if (py::isinstance<py::int_>(h))
      out.push_back(h.cast<int64_t>());
    else
      throw InputError("history: each item is a raw id (str) or an item index (int), got " +
                       std::string(py::str(py::type::of(h).attr("__name__"))));
  }
  return out;
}

/// A served run: the same answers as `twistar serve` gives over HTTP, as Python objects.
class PyModel {
 public:
  PyModel(const std::string& run, const std::string& data, int threads) {
    Context ctx;
    ctx.threads = threads;
    py::gil_scoped_release release;
    ctx.apply();
    service_ = load_service(run, ServeOptions(), ctx, data);
  }

  py::object recommend(const py::sequence& history, int k, const std::string& mode, bool explain,
                       bool exclude_history) const {
    const std::string body = request(history, k, mode, explain, exclude_history);
    ServiceAnswer a;
    {
      py::gil_scoped_release release;
      a = service_->handle(body);
    }
    return answer(a);
  }

  py::list recommend_batch(const std::vector<py::sequence>& histories, int k, const std::string& mode, bool explain,
                           bool exclude_history) const {
    std::vector<std::string> bodies;
    for (const auto& h : histories) bodies.push_back(request(h, k, mode, explain, exclude_history));
    std::vector<ServiceAnswer> answers(bodies.size());
    {
      py::gil_scoped_release release;
      for (size_t i = 0; i < bodies.size(); ++i) answers[i] = service_->handle(bodies[i]);
    }
    py::list out;
    for (const auto& a : answers) out.append(answer(a));
    return out;
  }

  size_t num_items() const { return service_->items().num_items(); }

 private:
  static std::string request(const py::sequence& history, int k, const std::string& mode, bool explain,
                             bool exclude_history) {
    nlohmann::json r = {{"history", history_json(history)}, {"k", k},
                        {"mode", mode},                     {"explain", explain},
                        {"exclude_history", exclude_history}};
    return dump_json(r);
  }
  /// 4xx answers are the caller's mistake (ValueError), 5xx the library's (RuntimeError).
  static py::object answer(const ServiceAnswer& a) {
    if (a.status == 200) return to_python(a.body);
    const auto& e = a.body.value("error", nlohmann::json::object());
    const std::string message = e.value("message", "request failed") +
                                (e.value("field", "").empty() ? "" : " (field " + e.value("field", "") + ")");
    if (a.status >= 500) throw Error(message);
    throw InputError(message);
  }

  std::shared_ptr<const Service> service_;
};

py::dict event_dict(const FitStageEvent& e) {
  py::dict d;
  d["stage"] = e.stage;
  d["index"] = e.index;
  d["count"] = e.count;
  d["done"] = e.done;
  d["reused"] = e.reused;
  d["seconds"] = e.seconds;
  d["elapsed"] = e.elapsed;
  d["eta_seconds"] = e.eta_seconds;
  d["summary"] = e.summary;
  d["line"] = fit_event_line(e);
  return d;
}

py::object fit_py(const std::string& data_path, const std::string& run, const std::vector<std::string>& args,
                  const py::object& progress) {
  FitOptions fit;
  Context ctx;
  parse_fit_options(args, fit, ctx);
  fit.eval.command = "twistar.fit(" + data_path + ", " + run + ")";
  py::object logger = py::module_::import("logging").attr("getLogger")("twistar");
  auto on_stage = [&](const FitStageEvent& e) {
    py::gil_scoped_acquire acquire;
    if (!progress.is_none())
      progress(event_dict(e));
    else
      logger.attr("info")(fit_event_line(e));
  };
  FitOutcome out;
  {
    py::gil_scoped_release release;
    ctx.apply();
    RunLock lock(run, fit.eval.command);
    Dataset d = load_dataset(data_path);
    out = run_fit(d, fit, ctx, run, /*progress=*/false, on_stage);
  }
  py::dict result;
  py::list stages;
  for (const auto& e : out.stages) stages.append(event_dict(e));
  result["stages"] = stages;
  result["eval"] = out.eval ? to_python(*out.eval) : py::none();
  return std::move(result);
}

/// One `twistar` command in-process with the GIL released (its output goes to this process's stdout).
void command_py(const std::vector<std::string>& args) {
  py::gil_scoped_release release;
  run_command(args);
}

}  // namespace
}  // namespace twistar

PYBIND11_MODULE(_twistar, m) {
  using namespace twistar;
  m.doc() = "twistar: generative recommendation with adaptive reasoning (C++ core)";
  setup_logging("warn");
  Progress::set_quiet(true);
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const InputError& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const CLI::ParseError& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const Error& e) {
      PyErr_SetString(PyExc_RuntimeError, e.what());
    }
  });

  py::class_<PyDataset>(m, "Dataset")
      .def_property_readonly("num_users", &PyDataset::num_users)
      .def_property_readonly("num_items", &PyDataset::num_items)
      .def_property_readonly("num_interactions", &PyDataset::num_interactions)
      .def_property_readonly("item_ids", [](const PyDataset& d) { return d.data->item_ids; })
      .def_property_readonly("user_ids", [](const PyDataset& d) { return d.data->user_ids; })
      .def_property_readonly("sequences", &PyDataset::sequences,
                             "Each user's item indices, oldest first (index i is item_ids[i])")
      .def("sequences_array", &PyDataset::sequences_array, py::arg("max_len") = 0,
           "users x max_len int64 array of item indices, right-aligned, -1 before (max_len 0: the longest)")
      .def("summary", &PyDataset::summary)
      .def("__repr__", &PyDataset::summary);
  m.def("load_dataset", &load_dataset_py, py::arg("path"), py::arg("format") = py::none());

  py::class_<PyModel>(m, "Model")
      .def(py::init<const std::string&, const std::string&, int>(), py::arg("run"), py::arg("data") = "",
           py::arg("threads") = 1)
      .def("recommend", &PyModel::recommend, py::arg("history"), py::arg("k") = 10, py::arg("mode") = "auto",
           py::arg("explain") = true, py::arg("exclude_history") = true)
      .def("recommend_batch", &PyModel::recommend_batch, py::arg("histories"), py::arg("k") = 10,
           py::arg("mode") = "auto", py::arg("explain") = true, py::arg("exclude_history") = true)
      .def_property_readonly("num_items", &PyModel::num_items);

  m.def("fit", &fit_py, py::arg("data"), py::arg("run"), py::arg("args"), py::arg("progress") = py::none(),
        "`twistar fit` on data into run; args are its flags (--until ranker ...)");
  m.def("command", &command_py, py::arg("args"),
        "Runs one twistar command line in-process, e.g. ['train', 'sasrec', '--data', 'd', '--run', 'r']");
  m.def("fit_stages", &fit_stages);
}
