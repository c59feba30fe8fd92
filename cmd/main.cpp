// evstream: composable event utilities around a real-time WebSocket broadcaster.
#include <iostream>
#include <map>

#include "cmd/commands.hpp"
#include "cmd/config.hpp"
#include "core/util/error.hpp"

int main(int argc, char** argv) {
  using namespace evstream;
  CLI::App app{"evstream: publish, persist, broadcast and follow JSON events over WebSocket",
               "evstream"};
  app.set_version_flag("--version", "evstream " EVSTREAM_VERSION);
  app.require_subcommand(1);
  std::map<const CLI::App*, cmd::Runner> runners;
  const auto add = [&](cmd::Runner (*adder)(CLI::App&)) {
    cmd::Runner runner = adder(app);
    CLI::App* sub = app.get_subcommands({}).back();
    runners.emplace(sub, cmd::with_config(*sub, std::move(runner)));
  };
  add(cmd::add_serve);
  add(cmd::add_publish);
  add(cmd::add_tail);
  add(cmd::add_replay);
  add(cmd::add_loadtest);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    std::cerr << "evstream: error: " << e.what() << " (see evstream --help)\n";
    return cmd::kExitUsage;
  }
  try {
    for (const CLI::App* sub : app.get_subcommands()) return runners.at(sub)();
    return cmd::kExitUsage;
  } catch (const cmd::ConfigError& e) {  // names its file and line, or its variable
    std::cerr << "evstream: error: " << e.what() << '\n';
    return cmd::kExitUsage;
  } catch (const cmd::UsageError& e) {
    std::cerr << "evstream: error: " << e.what() << " (see evstream --help)\n";
    return cmd::kExitUsage;
  } catch (const UnavailableError& e) {
    std::cerr << "evstream: error: " << e.what() << '\n';
    return cmd::kExitUnavailable;
  } catch (const Error& e) {
    std::cerr << "evstream: error: " << e.what() << '\n';
    return cmd::kExitRejected;
  } catch (const std::exception& e) {
    std::cerr << "evstream: internal error: " << e.what() << '\n';
    return 70;
  }
}
