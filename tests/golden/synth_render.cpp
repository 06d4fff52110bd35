// synth_render: renders one song with the synth engine, for listening and for the audio
// tests. Not the product's CLI (that is `songd generate`).
//
//   synth_render --lyrics song.lrc --style "energetic EDM" --length 95 --seed 7
//                --out /tmp/song [--stems]
//   → /tmp/song/raw.wav (+ vocals.wav, band.wav, vocal_notes.csv, synth_plan.json)

#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "core/error.h"
#include "engine/synth/synth_engine.h"

int main(int argc, char** argv) {
    CLI::App app{"Render a song with the synth engine"};
    std::string lyrics_path, style, out_dir, soundfont;
    int length = 95;
    uint64_t seed = 1;
    bool stems = false;
    app.add_option("--lyrics", lyrics_path, "LRC file")->required()->check(CLI::ExistingFile);
    app.add_option("--style", style, "style prompt")->required();
    app.add_option("--length", length, "seconds: 95 or 96..285");
    app.add_option("--seed", seed, "seed");
    app.add_option("--out", out_dir, "output folder (created)")->required();
    app.add_option("--soundfont", soundfont, "SoundFont file (default: best installed)");
    app.add_flag("--stems", stems, "also write stems and the plan");
    CLI11_PARSE(app, argc, argv);

    std::ifstream in(lyrics_path, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    songd::engine::RenderRequest request;
    request.job_id = "synth_render";
    request.lyrics = text.str();
    request.style_prompt = style;
    request.audio_length = length;
    request.seed = seed;
    request.work_dir = out_dir;
    request.write_stems = stems;
    std::filesystem::create_directories(out_dir);
    try {
        songd::engine::synth::SynthEngine engine(soundfont);
        songd::engine::CancelToken cancel;
        auto path = engine.Render(
            request, [](int pct) { std::fprintf(stderr, "progress %d\n", pct); }, cancel);
        std::cout << path.string() << "\n";
    } catch (const songd::core::Error& e) {
        std::cerr << "error: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
