#include "harness/wav.h"

#include <cstring>

namespace songd::test {
namespace {

uint32_t U32(const std::string& b, size_t at) {
    uint32_t v;
    std::memcpy(&v, b.data() + at, 4);
    return v;
}
uint16_t U16(const std::string& b, size_t at) {
    uint16_t v;
    std::memcpy(&v, b.data() + at, 2);
    return v;
}

}  // namespace

WavInfo ParseWav(const std::string& b) {
    WavInfo info;
    if (b.size() < 12 || b.compare(0, 4, "RIFF") != 0 || b.compare(8, 4, "WAVE") != 0) return info;
    size_t pos = 12;
    bool have_fmt = false;
    while (pos + 8 <= b.size()) {
        std::string id = b.substr(pos, 4);
        uint32_t size = U32(b, pos + 4);
        if (id == "fmt " && pos + 24 <= b.size()) {
            info.channels = U16(b, pos + 10);
            info.sample_rate = static_cast<int>(U32(b, pos + 12));
            info.bits = U16(b, pos + 22);
            have_fmt = true;
        } else if (id == "data") {
            if (!have_fmt || info.channels == 0 || info.bits == 0) return info;
            if (pos + 8 + size > b.size()) return info;  // truncated
            info.frames = size / (info.channels * info.bits / 8);
            info.valid = true;
            return info;
        }
        pos += 8 + size + (size & 1);
    }
    return info;
}

}  // namespace songd::test
