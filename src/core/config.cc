#include "core/config.h"

#include <toml++/toml.h>

#include <sstream>

#include "core/error.h"

namespace twistar {

namespace {

std::string scalar_text(const toml::node& node, const std::string& key) {
  if (auto s = node.as_string()) return s->get();
  if (auto i = node.as_integer()) return std::to_string(i->get());
  if (auto f = node.as_floating_point()) {
    std::ostringstream out;
    out.precision(17);
    out << f->get();
    return out.str();
  }
  if (auto b = node.as_boolean()) return b->get() ? "true" : "false";
  throw_input_error("config: key '{}' has a value type that options cannot take", key);
}

void flatten(const toml::table& table, std::vector<std::string>& parents,
             std::vector<CLI::ConfigItem>& out) {
  for (const auto& [key, node] : table) {
    std::string name(key.str());
    if (const auto* sub = node.as_table()) {
      parents.push_back(name);
      flatten(*sub, parents, out);
      parents.pop_back();
      continue;
    }
    CLI::ConfigItem item;
    item.parents = parents;
    item.name = name;
    if (const auto* arr = node.as_array()) {
      for (const auto& element : *arr) item.inputs.push_back(scalar_text(element, name));
    } else {
      item.inputs.push_back(scalar_text(node, name));
    }
    out.push_back(std::move(item));
  }
}

}  // namespace

std::vector<CLI::ConfigItem> TomlConfig::from_config(std::istream& input) const {
  toml::table table;
  try {
    table = toml::parse(input);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    throw InputError(fmt::format("config: line {}, column {}: {}", where.line, where.column,
                                 std::string(e.description())));
  }
  std::vector<CLI::ConfigItem> items;
  std::vector<std::string> parents;
  flatten(table, parents, items);
  return items;
}

std::string TomlConfig::to_config(const CLI::App* app, bool default_also, bool write_description,
                                  std::string prefix) const {
  return CLI::ConfigTOML().to_config(app, default_also, write_description, std::move(prefix));
}

}  // namespace twistar
