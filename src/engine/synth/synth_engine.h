#pragma once
/// @file
/// SynthEngine (`ENGINE=synth`, the default): renders a whole song on the CPU from the LRC
/// lyrics and the style prompt — arrangement and band through FluidSynth with a General
/// MIDI SoundFont, the lyrics sung on their timestamps by espeak-ng re-pitched with PSOLA.
///
///   synth::SynthEngine engine(config.soundfont);          // "" = best installed SoundFont
///   auto raw = engine.Render(request, progress, cancel);  // work_dir/raw.wav
///
/// Output: exactly TargetFrames(audio_length) frames of 44.1 kHz stereo float WAV, peaks at
/// or below -1 dBFS. The same request (seed included) gives byte-identical files. With
/// `write_stems` it also writes into work_dir: vocals.wav (the dry vocal, mono float; the mix
/// adds a small room reverb to it), band.wav (the band alone, stereo
/// float), vocal_notes.csv (for every sung syllable: when it sounds, where its vowel falls on
/// the beat, and its intended MIDI note) and synth_plan.json
/// (tempo, key, mode, instruments, sections).
///
/// An instrumental (`request.instrumental`, or blank lyrics) has no vocal line: the band plays
/// a verse/chorus/break form alone, vocals.wav is silent and vocal_notes.csv has no rows.

#include <string>

#include "engine/engine.h"

namespace songd::engine::synth {

/// @brief The built-in song engine.
class SynthEngine : public Engine {
  public:
    explicit SynthEngine(std::string soundfont = "") : soundfont_(std::move(soundfont)) {}
    std::string Name() const override { return "synth"; }
    /// Finds the SoundFont (SOUNDFONT or an installed General MIDI one); throws when there is
    /// none, so a service that cannot render does not start. Ready once started.
    void Start() override;
    std::filesystem::path Render(const RenderRequest& request, const ProgressFn& progress,
                                 const CancelToken& cancel) override;

  private:
    std::string soundfont_;
};

}  // namespace songd::engine::synth
