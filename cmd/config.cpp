// --config, --print-config and EVSTREAM_<FLAG>: see config.hpp. CLI11 2.1 reads a config file only
// for the top-level app, before the environment (so the file would beat the environment) and
// without line numbers; here its option machinery (results, validators, conversion) and its
// reading of TOML values are used, in the SPEC's order, with every error naming its line.
#include "cmd/config.hpp"

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>

#include "core/util/config_file.hpp"

namespace evstream::cmd {

namespace {

// Options a layer may set: those with a long name that CLI11 lets a config file set (not --help,
// --config, --print-config, nor positional arguments).
bool layered(const CLI::Option* opt) {
  return opt->get_configurable() && !opt->get_lnames().empty();
}

const std::string& key_of(const CLI::Option* opt) {
  return opt->get_lnames().front();
}

enum class Layer { command_line, environment, file };

// Where an option's value came from: "--port", "EVSTREAM_PORT" or "serve.toml:3".
struct Origin {
  Layer layer;
  std::string where;
};

// The values of one config file line, read as CLI11 reads its TOML files: "a" or 'a', [a, b], bare
// words and numbers. An empty string or list means "not set".
std::vector<std::string> file_values(const std::string& text) {
  CLI::ConfigBase reader;
  reader.comment('\0');  // comments are gone already; a '#' inside quotes belongs to the value
  std::istringstream in("value=" + text);
  const std::vector<CLI::ConfigItem> items = reader.from_config(in);
  std::vector<std::string> values = items.empty() ? std::vector<std::string>{} : items[0].inputs;
  if (values.size() == 1 && values[0].empty()) values.clear();
  return values;
}

// CLI11's "--port: Value 0 not in range 1 to 5" without its "--port: ", secrets masked.
std::string reason(const CLI::Error& e, const CLI::Option* opt,
                   const std::vector<std::string>& values) {
  std::string text = e.what();
  const std::string prefix = "--" + key_of(opt) + ": ";
  if (text.starts_with(prefix)) text.erase(0, prefix.size());
  if (is_secret_option(key_of(opt))) {
    for (const std::string& value : values) {
      for (auto at = text.find(value); !value.empty() && at != std::string::npos;
           at = text.find(value, at + kSecretMask.size()))
        text.replace(at, value.size(), kSecretMask);
    }
  }
  return text;
}

// A value CLI11 reads back as `values`: CLI11's own quoting, except that a text holding both quote
// characters goes in a list with its '"' escaped (CLI11 2.1 unescapes \" only inside lists).
std::string config_value(const std::vector<std::string>& values) {
  const auto both_quotes = [](const std::string& value) {
    return value.find('"') != std::string::npos && value.find('\'') != std::string::npos;
  };
  if (std::none_of(values.begin(), values.end(), both_quotes)) return CLI::detail::ini_join(values);
  std::string out = "[";
  for (const std::string& value : values) {
    if (out.size() > 1) out += ", ";
    if (!both_quotes(value)) {
      out += CLI::detail::convert_arg_for_ini(value);
      continue;
    }
    out += '"';
    for (const char c : value) out += c == '"' ? std::string("\\\"") : std::string(1, c);
    out += '"';
  }
  return out + "]";
}

class Layers {
 public:
  explicit Layers(CLI::App& sub) : m_sub(sub) {
    for (const CLI::Option* opt : m_sub.get_options(layered))
      if (opt->count() > 0) m_origins[opt] = {Layer::command_line, "--" + key_of(opt)};
  }

  // Every option still unset whose EVSTREAM_<FLAG> is set and not empty.
  void apply_environment() {
    for (CLI::Option* opt : m_sub.get_options(layered)) {
      const std::string name = flag_env_name(key_of(opt));
      const char* value = std::getenv(name.c_str());
      if (value == nullptr || *value == '\0') continue;  // empty is unset, as in CLI11
      apply(opt, {value}, {Layer::environment, name}, name + " (--" + key_of(opt) + ")",
            " (fix or unset " + name + "; evstream " + m_sub.get_name() + " --help says what --" +
                key_of(opt) + " takes)");
    }
  }

  void apply_file(const std::string& path) {
    std::vector<ConfigLine> lines;
    try {
      lines = read_config_file(path);
    } catch (const ConfigFileError& e) {
      if (e.line() == 0) {
        throw ConfigError("cannot read config file " + path + ": " + e.what() +
                          " (pass an existing file to --config; evstream " + m_sub.get_name() +
                          " --print-config > FILE writes one)");
      }
      throw ConfigError(path + ":" + std::to_string(e.line()) + ": " + e.what());
    }
    for (const ConfigLine& line : lines) {
      const std::string where = path + ":" + std::to_string(line.line);
      CLI::Option* opt = find(line.key, where);
      const std::vector<std::string> values = file_values(line.value);
      if (values.empty()) continue;
      if (is_secret_option(line.key) && values[0] == kSecretMask) {
        throw ConfigError(where + ": " + line.key + " = \"" + std::string(kSecretMask) +
                          "\" is the mask --print-config writes, not a token: write the token "
                          "there, set " +
                          flag_env_name(line.key) + ", or remove the line");
      }
      std::string hint = " (fix the value; evstream " + m_sub.get_name() + " --help says what " +
                         line.key + " takes)";
      if (values.size() > 1 && line.value.front() != '[') {
        hint = " (a value with spaces or commas goes in quotes: " + line.key + " = \"...\")";
      }
      apply(opt, values, {Layer::file, where}, where + ": " + line.key, hint);
    }
  }

  // The configuration in effect, as a config file: every option with its value, or commented out
  // when unset; secrets masked and commented out, so reading the file back never sets them.
  std::string print(const std::string& config_file) const {
    const std::string name = m_sub.get_name();
    std::ostringstream out;
    out << "# evstream " << name << " configuration (evstream " EVSTREAM_VERSION
        << "), written by `evstream " << name << " --print-config`"
        << (config_file.empty() ? "" : " with --config " + config_file) << ".\n"
        << "# Read it with `evstream " << name << " --config FILE`. Keys are the long flags; a "
        << "key left out or commented\n# out keeps its default. Every flag can also come from "
        << "EVSTREAM_<FLAG> (EVSTREAM_RETAIN_AGE for\n# retain-age). Precedence: command line > "
        << "environment > this file > default.\n";
    for (const CLI::Option* opt : m_sub.get_options(layered)) {
      const std::string& key = key_of(opt);
      const auto origin = m_origins.find(opt);
      const std::string from = origin == m_origins.end() ? "" : "  # from " + origin->second.where;
      out << "\n# " << opt->get_description() << '\n';
      if (is_secret_option(key) && opt->count() > 0) {
        out << "# " << key << " = \"" << kSecretMask << "\"  # set by " << origin->second.where
            << ", never printed: keep it in " << flag_env_name(key)
            << " or write it here in a file only evstream can read\n";
        continue;
      }
      std::vector<std::string> values = opt->results();
      if (values.empty() && !opt->get_default_str().empty()) values = {opt->get_default_str()};
      if (values.empty() && opt->get_expected_min() == 0) values = {"false"};  // a flag
      if (values.empty()) {
        out << "# " << key << " =\n";
      } else {
        out << key << " = " << config_value(values) << from << '\n';
      }
    }
    return out.str();
  }

 private:
  CLI::Option* find(const std::string& key, const std::string& where) {
    CLI::Option* opt = key.starts_with('-') ? nullptr : m_sub.get_option_no_throw("--" + key);
    if (opt != nullptr && layered(opt) && key_of(opt) == key) return opt;
    if (opt != nullptr && !opt->get_lnames().empty() && key_of(opt) == key) {
      throw ConfigError(where + ": --" + key + " is for the command line, not a config file");
    }
    std::vector<std::string> keys;
    for (const CLI::Option* known : m_sub.get_options(layered)) keys.push_back(key_of(known));
    const std::string close = closest_name(key, keys);
    throw ConfigError(where + ": unknown key \"" + key + "\"" +
                      (close.empty() ? "" : " (did you mean \"" + close + "\"?)") +
                      ": keys are the long flags of evstream " + m_sub.get_name() +
                      " without --, see evstream " + m_sub.get_name() + " --help");
  }

  // Sets `opt` from a lower layer unless a higher layer decided it: by setting it, or by setting
  // an option it excludes (`replay --db F` wins over EVSTREAM_URL). Two options that exclude each
  // other on the same layer are an error, as on the command line. `label` and `hint` frame the
  // messages: "serve.toml:3: port: <why> (what to do)".
  void apply(CLI::Option* opt, const std::vector<std::string>& values, const Origin& origin,
             const std::string& label, const std::string& hint) {
    if (m_origins.contains(opt)) return;
    for (const CLI::Option* other : opt->get_excludes()) {
      const auto set = m_origins.find(other);
      if (set == m_origins.end()) continue;
      if (set->second.layer != origin.layer) return;
      throw ConfigError(label + " cannot be used with " + key_of(other) + " (" + set->second.where +
                        "): keep one of them");
    }
    try {
      if (opt->get_expected_min() == 0) {  // a flag: true or false
        if (values.size() != 1) throw CLI::ArgumentMismatch("expected true or false");
        opt->add_result(opt->get_flag_value(key_of(opt), values[0]));
      } else {
        opt->add_result(values);
      }
      opt->run_callback();
    } catch (const CLI::ParseError& e) {
      throw ConfigError(label + ": " + reason(e, opt, values) + hint);
    }
    m_origins[opt] = origin;
  }

  CLI::App& m_sub;
  std::map<const CLI::Option*, Origin> m_origins;
};

struct ConfigFlags {
  std::string file;
  bool print = false;
};

}  // namespace

Runner with_config(CLI::App& sub, Runner run) {
  auto flags = std::make_shared<ConfigFlags>();
  sub.add_option("--config", flags->file,
                 "Read options from this TOML file (keys: the long flags, e.g. port = 8000)")
      ->configurable(false);
  sub.add_flag("--print-config", flags->print,
               "Print the effective configuration as a --config file (tokens masked) and exit")
      ->configurable(false);
  sub.footer(
      "Every long flag can also be set by EVSTREAM_<FLAG> (EVSTREAM_RETAIN_AGE for "
      "--retain-age) or in the\n--config file. Precedence: command line > environment > "
      "file > default.");
  return [&sub, flags, run = std::move(run)] {
    Layers layers(sub);
    layers.apply_environment();
    if (!flags->file.empty()) layers.apply_file(flags->file);
    if (flags->print) {
      std::cout << layers.print(flags->file) << std::flush;
      return kExitOk;
    }
    return run();
  };
}

}  // namespace evstream::cmd
