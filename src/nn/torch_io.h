// Writing torch archives so that the same weights give the same bytes. torch::save to a file path
// names every record of the zip after that file (`.model.pt.tmp.<pid>.<hex>/data/0` for an atomic
// write), so two identical trainings wrote different files and every stage that hashes a model file
// (apps/pipeline.h) saw different inputs. Saving through a stream gives the records a fixed name.
#pragma once

#include <torch/torch.h>

#include <filesystem>
#include <ostream>

#include "core/atomic_file.h"

namespace twistar {

/// torch::save(value) into `path` atomically, with stable record names (value: a module, an
/// optimizer, a tensor: anything torch::save takes).
template <typename T>
void save_torch_atomic(const std::filesystem::path& path, const T& value) {
  write_file_atomic(path, [&](std::ostream& out) { torch::save(value, out); });
}

/// An archive into `path` atomically, with stable record names.
inline void save_archive_atomic(const std::filesystem::path& path, torch::serialize::OutputArchive& archive) {
  write_file_atomic(path, [&](std::ostream& out) { archive.save_to(out); });
}

}  // namespace twistar
