// A minimal PNG decoder (8-bit RGB / RGBA, not interlaced), enough for a headless Chromium
// screenshot, and the check that a screenshot is not blank. Tests only (the report's and the
// playground's browser tests).
#pragma once

#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "statewall/base/status.hpp"

namespace statewall::testing {

struct Image {
  uint32_t width = 0, height = 0;
  unsigned channels = 0;
  std::vector<uint8_t> pixels;  // rows of width * channels bytes
};

inline uint32_t be32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}

// The image, or a failure saying why it cannot be read.
inline base::Expected<Image> decodePng(const std::vector<uint8_t>& f) {
  using base::Status;
  Image image;
  Image* img = &image;
  static const uint8_t kSig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (f.size() < 8 || !std::equal(kSig, kSig + 8, f.begin())) {
    return Status::failure("not a PNG file");
  }
  std::vector<uint8_t> idat;
  uint8_t depth = 0, color = 0, interlace = 0;
  for (size_t p = 8; p + 12 <= f.size();) {
    const uint32_t len = be32(&f[p]);
    if (p + 12 + len > f.size()) break;
    const std::string type(reinterpret_cast<const char*>(&f[p + 4]), 4);
    const uint8_t* data = &f[p + 8];
    if (type == "IHDR") {
      img->width = be32(data);
      img->height = be32(data + 4);
      depth = data[8];
      color = data[9];
      interlace = data[12];
    } else if (type == "IDAT") {
      idat.insert(idat.end(), data, data + len);
    } else if (type == "IEND") {
      break;
    }
    p += 12 + len;
  }
  if (depth != 8 || (color != 2 && color != 6) || interlace != 0) {
    return Status::failure("unsupported PNG: depth " + std::to_string(depth) + ", colour type " +
                           std::to_string(color) + ", interlace " + std::to_string(interlace));
  }
  img->channels = color == 6 ? 4 : 3;
  const size_t stride = size_t{img->width} * img->channels;
  std::vector<uint8_t> raw((stride + 1) * img->height);
  uLongf raw_len = raw.size();
  if (uncompress(raw.data(), &raw_len, idat.data(), idat.size()) != Z_OK || raw_len != raw.size()) {
    return Status::failure("cannot inflate the image data");
  }
  img->pixels.assign(stride * img->height, 0);
  const unsigned bpp = img->channels;
  for (uint32_t y = 0; y < img->height; ++y) {
    const uint8_t filter = raw[y * (stride + 1)];
    const uint8_t* in = &raw[y * (stride + 1) + 1];
    uint8_t* out = &img->pixels[y * stride];
    const uint8_t* prev = y > 0 ? &img->pixels[(y - 1) * stride] : nullptr;
    for (size_t x = 0; x < stride; ++x) {
      const int a = x >= bpp ? out[x - bpp] : 0;
      const int b = prev ? prev[x] : 0;
      const int c = prev && x >= bpp ? prev[x - bpp] : 0;
      int v = in[x];
      switch (filter) {
        case 0:
          break;
        case 1:
          v += a;
          break;
        case 2:
          v += b;
          break;
        case 3:
          v += (a + b) / 2;
          break;
        case 4: {
          const int pa = std::abs(b - c), pb = std::abs(a - c), pc = std::abs(a + b - 2 * c);
          v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
          break;
        }
        default:
          return Status::failure("bad PNG filter type");
      }
      out[x] = static_cast<uint8_t>(v);
    }
  }
  return image;
}

// Distinct colours and the share of pixels that are not near-white.
struct Ink {
  size_t colours = 0;
  uint64_t non_white = 0;
  uint64_t total = 0;
};
inline Ink inkOf(const Image& img) {
  std::set<uint32_t> colours;
  Ink ink;
  ink.total = uint64_t{img.width} * img.height;
  for (uint64_t i = 0; i < ink.total; ++i) {
    const uint8_t* p = &img.pixels[i * img.channels];
    colours.insert(uint32_t{p[0]} << 16 | uint32_t{p[1]} << 8 | p[2]);
    if (p[0] < 235 || p[1] < 235 || p[2] < 235) ++ink.non_white;
  }
  ink.colours = colours.size();
  return ink;
}

}  // namespace statewall::testing
