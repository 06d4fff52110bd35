// songd: the song-generation service. Subcommands live in src/app/commands.h.
#include "app/commands.h"

int main(int argc, char** argv) { return songd::app::Main(argc, argv); }
