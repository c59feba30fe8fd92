#pragma once
// The layers under the command line (SPEC "Configuration"): every long flag of a subcommand also
// from EVSTREAM_<FLAG> and from a TOML file given with --config; `--print-config` writes the
// effective configuration back in that format. Precedence: command line > environment > file >
// default.
#include <CLI/CLI.hpp>

#include "cmd/commands.hpp"

namespace evstream::cmd {

// A bad config file, key or value, or a bad EVSTREAM_* value. The message names the file and line
// (or the variable) and the key; main prints it as is and exits with kExitUsage.
class ConfigError : public UsageError {
 public:
  using UsageError::UsageError;
};

// Adds --config FILE and --print-config to `sub` (call it once every other option is declared) and
// returns the runner to use in place of `run`. Once the command line is parsed, that runner fills
// each option the command line left unset from its EVSTREAM_<FLAG> variable, then from the file;
// then it prints the configuration (--print-config) or calls `run`.
Runner with_config(CLI::App& sub, Runner run);

}  // namespace evstream::cmd
