#pragma once
/// @file
/// The subcommands of the `songd` binary: serve, generate, cleanup, migrate-s3.
/// Each parses its flags, builds what it needs from the configuration and runs.

namespace songd::app {

/// Entry point of the binary; returns the process exit code.
int Main(int argc, char** argv);

}  // namespace songd::app
