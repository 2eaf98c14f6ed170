// SPDX-License-Identifier: Apache-2.0
// A small streaming JSON writer for luring-probe --json, with no allocation and no
// exceptions. Header-only so tests/tools/json_writer_test.cpp can feed it hostile strings.
#pragma once

#include <cstddef>
#include <cstdio>

namespace luring::tools {

// Writes one JSON value per call and the commas between them; strings are escaped per
// RFC 8259 and any byte that is not valid UTF-8 becomes U+FFFD, so the output always
// parses whatever the kernel release string contains.
class Json {
public:
    explicit Json(std::FILE* out) : out_(out) {}

    void begin_object() { open('{'); }
    void end_object() { close('}'); }
    void begin_array() { open('['); }
    void end_array() { close(']'); }

    // The next value in an object gets this key.
    void key(const char* k) {
        separate();
        string_body(k);
        std::fputc(':', out_);
        after_key_ = true;
    }

    void string(const char* s) {
        separate();
        string_body(s);
    }
    void string_or_null(const char* s) { s != nullptr ? string(s) : null(); }
    void boolean(bool b) { raw(b ? "true" : "false"); }
    void null() { raw("null"); }
    void integer(long long v) {
        separate();
        std::fprintf(out_, "%lld", v);
    }
    void unsigned_integer(unsigned long long v) {
        separate();
        std::fprintf(out_, "%llu", v);
    }

    // Convenience: "k": value.
    void field(const char* k, const char* s) {
        key(k);
        string_or_null(s);
    }
    void field(const char* k, bool b) {
        key(k);
        boolean(b);
    }
    void field_int(const char* k, long long v) {
        key(k);
        integer(v);
    }
    void field_uint(const char* k, unsigned long long v) {
        key(k);
        unsigned_integer(v);
    }
    void field_null(const char* k) {
        key(k);
        null();
    }

private:
    void separate() {
        if (after_key_) {
            after_key_ = false;
        } else if (need_comma_) {
            std::fputc(',', out_);
        }
        need_comma_ = true;
    }
    void open(char c) {
        separate();
        std::fputc(c, out_);
        need_comma_ = false;
    }
    void close(char c) {
        std::fputc(c, out_);
        need_comma_ = true;
    }
    void raw(const char* text) {
        separate();
        std::fputs(text, out_);
    }

    // Length of the valid UTF-8 sequence starting at s (RFC 3629: no overlongs, no
    // surrogates, nothing above U+10FFFF), or 0 if it is not one.
    static std::size_t utf8_length(const unsigned char* s) {
        const unsigned char c = s[0];
        auto cont = [](unsigned char b) { return (b & 0xC0U) == 0x80U; };
        if (c >= 0xC2 && c <= 0xDF) return cont(s[1]) ? 2 : 0;
        if (c >= 0xE0 && c <= 0xEF) {
            if (!cont(s[1]) || !cont(s[2])) return 0;
            if (c == 0xE0 && s[1] < 0xA0) return 0;   // overlong
            if (c == 0xED && s[1] >= 0xA0) return 0;  // surrogate
            return 3;
        }
        if (c >= 0xF0 && c <= 0xF4) {
            if (!cont(s[1]) || !cont(s[2]) || !cont(s[3])) return 0;
            if (c == 0xF0 && s[1] < 0x90) return 0;   // overlong
            if (c == 0xF4 && s[1] >= 0x90) return 0;  // above U+10FFFF
            return 4;
        }
        return 0;
    }

    void string_body(const char* s) {
        std::fputc('"', out_);
        const auto* p = reinterpret_cast<const unsigned char*>(s);
        while (*p != 0) {
            const unsigned char c = *p;
            if (c == '"' || c == '\\') {
                std::fputc('\\', out_);
                std::fputc(c, out_);
                ++p;
            } else if (c == '\n') {
                std::fputs("\\n", out_);
                ++p;
            } else if (c == '\t') {
                std::fputs("\\t", out_);
                ++p;
            } else if (c < 0x20 || c == 0x7F) {
                std::fprintf(out_, "\\u%04x", c);
                ++p;
            } else if (c < 0x80) {
                std::fputc(c, out_);
                ++p;
            } else if (const std::size_t n = utf8_length(p); n != 0) {
                std::fwrite(p, 1, n, out_);
                p += n;
            } else {
                std::fputs("\\ufffd", out_);
                ++p;
            }
        }
        std::fputc('"', out_);
    }

    std::FILE* out_;
    bool need_comma_ = false;
    bool after_key_ = false;
};

}  // namespace luring::tools
