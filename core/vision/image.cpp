// Image decoding: PNG, BMP and GIF through stb_image, JPEG through libjpeg(-turbo), WebP through
// libwebp; then Pillow's conversions as transformers applies them (docs/vision.md).
#include "ominix/vision/image.h"

#include <algorithm>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>

#include <jerror.h>
#include <jpeglib.h>
#include <stb_image.h>
#include <webp/decode.h>
#include <webp/demux.h>
#include <zlib.h>

#include "ominix/base/error.h"

namespace ominix::vision {
namespace {

// Decoded pixels before conversion: 1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA) channels.
struct Pixels {
  int width = 0;
  int height = 0;
  int channels = 0;
  std::vector<std::uint8_t> data;
};

enum class Format { png, jpeg, bmp, gif, webp, unknown };

Format sniff(std::span<const std::uint8_t> b) {
  auto starts = [&](std::string_view magic, std::size_t at = 0) {
    return b.size() >= at + magic.size() &&
           std::memcmp(b.data() + at, magic.data(), magic.size()) == 0;
  };
  if (starts("\x89PNG\r\n\x1a\n")) return Format::png;
  if (starts("\xff\xd8\xff")) return Format::jpeg;
  if (starts("BM")) return Format::bmp;
  if (starts("GIF87a") || starts("GIF89a")) return Format::gif;
  if (starts("RIFF") && starts("WEBP", 8)) return Format::webp;
  return Format::unknown;
}

std::uint32_t be32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         p[3];
}
std::uint32_t le32(const std::uint8_t* p) {
  return (std::uint32_t{p[3]} << 24) | (std::uint32_t{p[2]} << 16) | (std::uint32_t{p[1]} << 8) |
         p[0];
}

// --- EXIF orientation (tag 0x0112 of IFD0), as PIL.ImageOps.exif_transpose reads it ------------

// `tiff` starts at the TIFF header ("II*\0" or "MM\0*"). 1 (upright) when absent or malformed.
int tiff_orientation(std::span<const std::uint8_t> tiff) {
  if (tiff.size() < 8) return 1;
  const bool le = tiff[0] == 'I' && tiff[1] == 'I';
  if (!le && !(tiff[0] == 'M' && tiff[1] == 'M')) return 1;
  auto u16 = [&](std::size_t at) -> unsigned {
    return le ? tiff[at] | (tiff[at + 1] << 8) : (tiff[at] << 8) | tiff[at + 1];
  };
  auto u32 = [&](std::size_t at) { return le ? le32(&tiff[at]) : be32(&tiff[at]); };
  const std::size_t ifd = u32(4);
  if (ifd + 2 > tiff.size()) return 1;
  const unsigned count = u16(ifd);
  for (unsigned i = 0; i < count; ++i) {
    const std::size_t e = ifd + 2 + 12 * static_cast<std::size_t>(i);
    if (e + 12 > tiff.size()) return 1;
    if (u16(e) == 0x0112 && u16(e + 2) == 3) {  // SHORT
      const unsigned v = u16(e + 8);
      return v >= 1 && v <= 8 ? static_cast<int>(v) : 1;
    }
  }
  return 1;
}

// "Exif\0\0" + TIFF, as in a JPEG APP1 segment (PNG's eXIf and WebP's EXIF chunks may omit it).
int exif_orientation(std::span<const std::uint8_t> exif) {
  if (exif.size() >= 6 && std::memcmp(exif.data(), "Exif\0\0", 6) == 0) exif = exif.subspan(6);
  return tiff_orientation(exif);
}

int jpeg_orientation(std::span<const std::uint8_t> b) {
  std::size_t at = 2;
  while (at + 4 <= b.size() && b[at] == 0xff) {
    const unsigned marker = b[at + 1];
    if (marker == 0xda || marker == 0xd9) break;  // start of scan, end of image
    const std::size_t len = (b[at + 2] << 8) | b[at + 3];
    if (len < 2 || at + 2 + len > b.size()) break;
    auto seg = b.subspan(at + 4, len - 2);
    if (marker == 0xe1 && seg.size() >= 6 && std::memcmp(seg.data(), "Exif\0\0", 6) == 0)
      return exif_orientation(seg);
    at += 2 + len;
  }
  return 1;
}

int png_orientation(std::span<const std::uint8_t> b) {
  for (std::size_t at = 8; at + 12 <= b.size();) {
    const std::size_t len = be32(&b[at]);
    if (len > b.size() - at - 12) break;
    if (std::memcmp(&b[at + 4], "eXIf", 4) == 0) return exif_orientation(b.subspan(at + 8, len));
    at += 12 + len;
  }
  return 1;
}

int webp_orientation(std::span<const std::uint8_t> b) {
  for (std::size_t at = 12; at + 8 <= b.size();) {
    const std::size_t len = le32(&b[at + 4]);
    if (len > b.size() - at - 8) break;
    if (std::memcmp(&b[at], "EXIF", 4) == 0) return exif_orientation(b.subspan(at + 8, len));
    at += 8 + len + (len & 1);
  }
  return 1;
}

// Pillow's Image.transpose for orientations 2..8 (exif_transpose's table).
Image orient(Image in, int orientation) {
  if (orientation <= 1) return in;
  const int W = in.width, H = in.height;
  const bool swap = orientation >= 5;
  Image out{swap ? H : W, swap ? W : H, std::vector<std::uint8_t>(in.data.size())};
  for (int y = 0; y < out.height; ++y) {
    for (int x = 0; x < out.width; ++x) {
      int sx = x, sy = y;  // source pixel of output (x, y)
      switch (orientation) {
        case 2:
          sx = W - 1 - x;
          break;  // FLIP_LEFT_RIGHT
        case 3:
          sx = W - 1 - x;
          sy = H - 1 - y;
          break;  // ROTATE_180
        case 4:
          sy = H - 1 - y;
          break;  // FLIP_TOP_BOTTOM
        case 5:
          sx = y;
          sy = x;
          break;  // TRANSPOSE
        case 6:
          sx = y;
          sy = H - 1 - x;
          break;  // ROTATE_270
        case 7:
          sx = W - 1 - y;
          sy = H - 1 - x;
          break;  // TRANSVERSE
        case 8:
          sx = W - 1 - y;
          sy = x;
          break;  // ROTATE_90
      }
      std::memcpy(&out.data[(static_cast<std::size_t>(y) * out.width + x) * 3],
                  &in.data[(static_cast<std::size_t>(sy) * W + sx) * 3], 3);
    }
  }
  return out;
}

// Grey replicated; alpha composited onto opaque white exactly as Pillow's ImagingAlphaComposite
// (libImaging/AlphaComposite.c, PRECISION_BITS 7) does it, then the alpha dropped.
Image to_rgb(const Pixels& p) {
  Image out{p.width, p.height,
            std::vector<std::uint8_t>(static_cast<std::size_t>(3) * p.width * p.height)};
  const bool grey = p.channels <= 2, alpha = p.channels == 2 || p.channels == 4;
  constexpr std::uint32_t kBits = 7;
  auto div255 = [](std::uint32_t a) { return ((a >> 8) + a) >> 8; };
  for (std::size_t i = 0, n = static_cast<std::size_t>(p.width) * p.height; i < n; ++i) {
    const std::uint8_t* s = &p.data[i * p.channels];
    std::uint8_t* d = &out.data[i * 3];
    for (int c = 0; c < 3; ++c) d[c] = s[grey ? 0 : c];
    if (!alpha) continue;
    const std::uint32_t a = s[p.channels - 1];
    if (a == 0) {
      d[0] = d[1] = d[2] = 255;
      continue;
    }
    const std::uint32_t outa255 = a * 255 + 255 * (255 - a);
    const std::uint32_t coef1 = a * 255 * 255 * (1u << kBits) / outa255;
    const std::uint32_t coef2 = 255 * (1u << kBits) - coef1;
    for (int c = 0; c < 3; ++c)
      d[c] =
          static_cast<std::uint8_t>(div255(d[c] * coef1 + 255 * coef2 + (0x80u << kBits)) >> kBits);
  }
  return out;
}

// --- decoders ----------------------------------------------------------------------------------

// Pillow's decompression-bomb limit (Image.MAX_IMAGE_PIXELS * 2, where it raises), checked from the
// header before any pixel memory is allocated.
constexpr std::int64_t kMaxPixels = 2 * 89478485;

void check_size(std::string_view name, std::int64_t width, std::int64_t height) {
  if (width * height > kMaxPixels)
    fail<UnsupportedError>("{}: image of {}x{} pixels is above the limit of {} pixels", name, width,
                           height, kMaxPixels);
}

[[noreturn]] void stb_fail(std::string_view name, const char* what) {
  const char* why = stbi_failure_reason();
  fail<FormatError>("{}: cannot decode {} image: {}", name, what, why ? why : "unknown error");
}

Pixels take_stb(unsigned char* data, int w, int h, int channels) {
  std::unique_ptr<unsigned char, void (*)(void*)> owned(data, stbi_image_free);
  Pixels p{w, h, channels, {}};
  p.data.assign(data, data + static_cast<std::size_t>(1) * w * h * channels);
  return p;
}

Pixels decode_stb(std::span<const std::uint8_t> b, std::string_view name, const char* what,
                  int want_channels) {
  if (b.size() > static_cast<std::size_t>(INT32_MAX)) fail<FormatError>("{}: file too large", name);
  int w = 0, h = 0, n = 0;
  if (stbi_info_from_memory(b.data(), static_cast<int>(b.size()), &w, &h, &n))
    check_size(name, w, h);
  unsigned char* data =
      stbi_load_from_memory(b.data(), static_cast<int>(b.size()), &w, &h, &n, want_channels);
  if (!data) stb_fail(name, what);
  return take_stb(data, w, h, want_channels ? want_channels : n);
}

// stb_image sizes its buffers from what a PNG declares: a 66-byte file whose IDAT chunk claims
// 1.1 GB (fuzz_image) made it allocate that much before finding the file short. Walk the chunks
// first, refusing one that runs past the end of the file, and inflate the IDAT stream counting its
// bytes without keeping them, refusing one that runs past what the IHDR dimensions need (plus 1 MiB
// of slack for encoders that append padding; the decoders ignore bytes past the image).
void check_png_inflated_size(std::span<const std::uint8_t> b, std::string_view name) {
  if (b.size() < 33 || std::memcmp(&b[12], "IHDR", 4) != 0) return;  // stb reports it
  const std::int64_t width = be32(&b[16]), height = be32(&b[20]);
  const int depth = b[24], color = b[25], interlace = b[28];
  const int channels = color == 2 ? 3 : color == 4 ? 2 : color == 6 ? 4 : 1;
  const auto scanlines = [&](std::int64_t w, std::int64_t h) {
    return w == 0 || h == 0 ? 0 : h * (1 + (w * channels * depth + 7) / 8);
  };
  std::int64_t need = 0;
  if (interlace == 1) {  // Adam7: the seven passes' sub-images
    static constexpr int kX0[] = {0, 4, 0, 2, 0, 1, 0}, kY0[] = {0, 0, 4, 0, 2, 0, 1};
    static constexpr int kDx[] = {8, 8, 4, 4, 2, 2, 1}, kDy[] = {8, 8, 8, 4, 4, 2, 2};
    for (int p = 0; p < 7; ++p)
      need += scanlines((width - kX0[p] + kDx[p] - 1) / kDx[p],
                        (height - kY0[p] + kDy[p] - 1) / kDy[p]);
  } else {
    need = scanlines(width, height);
  }
  const std::int64_t limit = need + (std::int64_t{1} << 20);

  z_stream z{};
  if (inflateInit(&z) != Z_OK) fail<FormatError>("{}: cannot start inflating the PNG data", name);
  std::unique_ptr<z_stream, int (*)(z_stream*)> guard(&z, inflateEnd);
  std::vector<std::uint8_t> sink(1 << 16);
  std::int64_t total = 0;
  for (std::size_t at = 8; at + 12 <= b.size();) {
    const std::size_t len = be32(&b[at]);
    if (len > b.size() - at - 12)  // stb_image would first grow its buffer to the declared length
      fail<FormatError>("{}: PNG chunk '{}' at byte {} declares {} bytes, past the end of the file",
                        name, std::string_view(reinterpret_cast<const char*>(&b[at + 4]), 4), at,
                        len);
    if (std::memcmp(&b[at + 4], "IEND", 4) == 0) return;
    if (std::memcmp(&b[at + 4], "IDAT", 4) == 0) {
      z.next_in = const_cast<Bytef*>(&b[at + 8]);
      z.avail_in = static_cast<uInt>(len);
      while (z.avail_in > 0) {
        z.next_out = sink.data();
        z.avail_out = static_cast<uInt>(sink.size());
        const int rc = inflate(&z, Z_NO_FLUSH);
        total += static_cast<std::int64_t>(sink.size() - z.avail_out);
        if (total > limit)
          fail<FormatError>(
              "{}: PNG data inflates past the {} bytes its {}x{} IHDR needs (corrupt or hostile "
              "file)",
              name, need, width, height);
        if (rc == Z_STREAM_END) return;
        if (rc != Z_OK) return;  // a damaged stream: stb reports it
      }
    }
    at += 12 + len;
  }
}

Pixels decode_png(std::span<const std::uint8_t> b, std::string_view name) {
  check_png_inflated_size(b, name);
  // Pillow opens 16-bit greyscale as mode "I;16", whose convert("RGB") clips at 255; every other
  // 16-bit PNG keeps each sample's high byte (what stb_image's 16 -> 8 conversion does).
  if (b.size() >= 26 && b[24] == 16 && b[25] == 0) {
    int w = 0, h = 0, n = 0;
    check_size(name, be32(&b[16]), be32(&b[20]));
    stbi_us* data = stbi_load_16_from_memory(b.data(), static_cast<int>(b.size()), &w, &h, &n, 0);
    if (!data) stb_fail(name, "PNG");
    std::unique_ptr<stbi_us, void (*)(void*)> owned(data, stbi_image_free);
    if (n != 1) fail<UnsupportedError>("{}: 16-bit greyscale PNG with transparency", name);
    Pixels p{w, h, 1, std::vector<std::uint8_t>(static_cast<std::size_t>(1) * w * h)};
    for (std::size_t i = 0; i < p.data.size(); ++i)
      p.data[i] = static_cast<std::uint8_t>(std::min<stbi_us>(data[i], 255));
    return p;
  }
  return decode_stb(b, name, "PNG", 0);
}

Pixels decode_bmp(std::span<const std::uint8_t> b, std::string_view name) {
  // Pillow reads a 32-bit BI_RGB bitmap as RGB (the fourth byte ignored); stb_image would keep it.
  const bool rgbx = b.size() >= 34 && b[28] == 32 && b[29] == 0 && le32(&b[30]) == 0;
  // stb_image reads zeros past the end of the data; Pillow fails on a truncated bitmap. Check the
  // size of uncompressed pixel data (BI_RGB, BI_BITFIELDS, BI_ALPHABITFIELDS) against the file.
  if (b.size() >= 34) {
    const std::uint32_t compression = le32(&b[30]);
    const std::int64_t width = static_cast<std::int32_t>(le32(&b[18]));
    const std::int64_t height = std::abs(std::int64_t{static_cast<std::int32_t>(le32(&b[22]))});
    const std::int64_t stride = (width * (b[28] | (b[29] << 8)) + 31) / 32 * 4;
    // stride * height > bytes after the pixel offset, without multiplying (it can overflow).
    const std::int64_t avail =
        static_cast<std::int64_t>(b.size()) - static_cast<std::int64_t>(le32(&b[10]));
    if ((compression == 0 || compression == 3 || compression == 6) && width > 0 &&
        (avail < 0 || (stride > 0 && height > avail / stride)))
      fail<FormatError>("{}: cannot decode BMP image: the file is truncated", name);
  }
  return decode_stb(b, name, "BMP", rgbx ? 3 : 0);
}

// Pillow's CMYK JPEG (rawmode "CMYK;I": inverted, Adobe's convention, assumed for every file) and
// its convert("RGB") (libImaging/Convert.c cmyk2rgb).
Pixels cmyk_to_rgb(const Pixels& in) {
  Pixels out{in.width, in.height, 3, std::vector<std::uint8_t>(in.data.size() / 4 * 3)};
  auto muldiv255 = [](int a, int b) {
    const int t = a * b + 128;
    return ((t >> 8) + t) >> 8;
  };
  for (std::size_t i = 0; i < in.data.size() / 4; ++i) {
    const std::uint8_t* s = &in.data[4 * i];
    auto v = [&](int c) { return 255 - s[c]; };
    const int nk = 255 - v(3);
    for (int c = 0; c < 3; ++c)
      out.data[3 * i + c] = static_cast<std::uint8_t>(std::clamp(nk - muldiv255(v(c), nk), 0, 255));
  }
  return out;
}

struct JpegError {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX] = {};
  bool truncated = false;
};

Pixels decode_jpeg(std::span<const std::uint8_t> b, std::string_view name) {
  jpeg_decompress_struct cinfo{};
  JpegError err{};
  cinfo.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = [](j_common_ptr c) {
    auto* e = reinterpret_cast<JpegError*>(c->err);
    c->err->format_message(c, e->message);
    std::longjmp(e->jump, 1);
  };
  err.mgr.emit_message = [](j_common_ptr c, int level) {
    // Pillow fails on a truncated file ("image file is truncated"); other warnings pass.
    if (level < 0 && c->err->msg_code == JWRN_JPEG_EOF)
      reinterpret_cast<JpegError*>(c->err)->truncated = true;
  };
  Pixels p;
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    fail<FormatError>("{}: cannot decode JPEG image: {}", name, err.message);
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, b.data(), static_cast<unsigned long>(b.size()));
  jpeg_read_header(&cinfo, TRUE);
  const int components = cinfo.num_components;
  if (components != 1 && components != 3 && components != 4) {
    jpeg_destroy_decompress(&cinfo);
    fail<UnsupportedError>("{}: JPEG with {} colour components is not supported", name, components);
  }
  if (std::int64_t{cinfo.image_width} * cinfo.image_height > kMaxPixels) {
    jpeg_destroy_decompress(&cinfo);
    check_size(name, cinfo.image_width, cinfo.image_height);
  }
  cinfo.out_color_space = components == 1 ? JCS_GRAYSCALE : components == 3 ? JCS_RGB : JCS_CMYK;
  jpeg_start_decompress(&cinfo);
  p.width = static_cast<int>(cinfo.output_width);
  p.height = static_cast<int>(cinfo.output_height);
  p.channels = cinfo.output_components;
  p.data.resize(static_cast<std::size_t>(cinfo.output_width) * cinfo.output_height *
                cinfo.output_components);
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = &p.data[static_cast<std::size_t>(cinfo.output_scanline) * cinfo.output_width *
                           cinfo.output_components];
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  if (p.channels == 4) p = cmyk_to_rgb(p);
  if (err.truncated) fail<FormatError>("{}: cannot decode JPEG image: the file is truncated", name);
  return p;
}

// Through WebPAnimDecoder, as Pillow decodes every WebP file: the first frame of an animation.
Pixels decode_webp(std::span<const std::uint8_t> b, std::string_view name) {
  WebPBitstreamFeatures f{};
  if (WebPGetFeatures(b.data(), b.size(), &f) != VP8_STATUS_OK)
    fail<FormatError>("{}: cannot decode WebP image: invalid or truncated header", name);
  check_size(name, f.width, f.height);
  const WebPData data{b.data(), b.size()};
  WebPAnimDecoderOptions options;
  WebPAnimDecoderOptionsInit(&options);
  options.color_mode = MODE_RGBA;
  std::unique_ptr<WebPAnimDecoder, void (*)(WebPAnimDecoder*)> dec(
      WebPAnimDecoderNew(&data, &options), WebPAnimDecoderDelete);
  WebPAnimInfo info{};
  std::uint8_t* frame = nullptr;
  int timestamp = 0;
  if (!dec || !WebPAnimDecoderGetInfo(dec.get(), &info) ||
      !WebPAnimDecoderGetNext(dec.get(), &frame, &timestamp))
    fail<FormatError>("{}: cannot decode WebP image: corrupt or truncated data", name);
  const int w = static_cast<int>(info.canvas_width), h = static_cast<int>(info.canvas_height);
  check_size(name, w, h);
  Pixels p{w, h, 4, std::vector<std::uint8_t>(frame, frame + static_cast<std::size_t>(4) * w * h)};
  if (!f.has_alpha && !f.has_animation) {  // Pillow's mode "RGB": the alpha channel dropped
    for (std::size_t i = 0, n = static_cast<std::size_t>(w) * h; i < n; ++i)
      std::memmove(&p.data[3 * i], &p.data[4 * i], 3);
    p.channels = 3;
    p.data.resize(static_cast<std::size_t>(3) * w * h);
  }
  return p;
}

}  // namespace

Image decode_image(std::span<const std::uint8_t> bytes, std::string_view name) {
  if (bytes.empty()) fail<FormatError>("{}: empty file, not an image", name);
  Pixels p;
  int orientation = 1;
  switch (sniff(bytes)) {
    case Format::png:
      p = decode_png(bytes, name);
      orientation = png_orientation(bytes);
      break;
    case Format::jpeg:
      p = decode_jpeg(bytes, name);
      orientation = jpeg_orientation(bytes);
      break;
    case Format::bmp:
      p = decode_bmp(bytes, name);
      break;
    case Format::gif:
      p = decode_stb(bytes, name, "GIF", 0);
      break;
    case Format::webp:
      p = decode_webp(bytes, name);
      orientation = webp_orientation(bytes);
      break;
    case Format::unknown:
      fail<UnsupportedError>("{}: not a PNG, JPEG, BMP, GIF or WebP image", name);
  }
  if (p.width <= 0 || p.height <= 0) fail<FormatError>("{}: image of size 0", name);
  return orient(to_rgb(p), orientation);
}

Image load_image(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail<IoError>("{}: cannot open image file", path.string());
  std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)), {});
  if (in.bad()) fail<IoError>("{}: cannot read image file", path.string());
  return decode_image(bytes, path.string());
}

}  // namespace ominix::vision
