#include "app/commands.h"

#include <CLI/CLI.hpp>

#include <iostream>

#include "app/generate_command.h"
#include "core/config.h"

namespace songd::app {

int Main(int argc, char** argv) {
    CLI::App app{"songd: song-generation service"};
    app.require_subcommand(1);
    std::string env_file;
    app.add_option("--env-file", env_file, "env file to read (default ./.env if present)");
    auto* serve = app.add_subcommand("serve", "HTTP API, generation workers and retention");
    GenerateCommand generate(app);
    CLI11_PARSE(app, argc, argv);
    try {
        auto env = core::ReadEnvironment(env_file.empty() ? std::filesystem::path(".env")
                                                          : std::filesystem::path(env_file),
                                         !env_file.empty());
        core::Config config = core::LoadConfig(env);
        if (generate.Parsed()) return generate.Run(config);
        (void)serve;
        (void)config;
    } catch (const core::ConfigError& e) {
        std::cerr << "songd: " << e.what() << "\n";
        return 2;
    }
    return 0;
}

}  // namespace songd::app
