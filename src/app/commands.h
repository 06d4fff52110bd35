#pragma once
/// @file
/// The subcommands of the `songd` binary: serve, generate, cleanup, migrate-s3.
/// Each parses its flags, builds what it needs from the configuration and runs.
///
///   int main(int argc, char** argv) { return songd::app::Main(argc, argv); }
///   // songd serve | songd generate --lyrics a.lrc --style "pop" -o a.wav | songd cleanup ...
///
/// Components live in the folders below; app/ only wires them together.

namespace songd::app {

/// Entry point of the binary; returns the process exit code.
int Main(int argc, char** argv);

}  // namespace songd::app
