// SPDX-License-Identifier: Apache-2.0
// The luring-probe JSON writer against hostile strings: quotes, backslashes, control
// bytes, valid UTF-8 of every length and each kind of invalid UTF-8 (which must become
// U+FFFD, or the output would not be JSON). Compares exact output, then prints one object
// holding every case for run_check --json-valid to parse.
#include "json_writer.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

using luring::tools::Json;

struct Case {
    const char* input;
    const char* expected;  // the JSON string literal, quotes included
};

constexpr Case kCases[] = {
    {"plain", "\"plain\""},
    {"a\"b\\c/d", "\"a\\\"b\\\\c/d\""},
    {"\n\t\x01\x1f\x7f", "\"\\n\\t\\u0001\\u001f\\u007f\""},
    {"\xc3\xa9", "\"\xc3\xa9\""},                              // U+00E9, 2 bytes
    {"\xe2\x82\xac", "\"\xe2\x82\xac\""},                      // U+20AC, 3 bytes
    {"\xf0\x9f\x98\x80", "\"\xf0\x9f\x98\x80\""},              // U+1F600, 4 bytes
    {"\xff", "\"\\ufffd\""},                                   // never valid
    {"\xc0\xaf", "\"\\ufffd\\ufffd\""},                        // overlong '/'
    {"\xe0\x80\xaf", "\"\\ufffd\\ufffd\\ufffd\""},             // overlong, 3 bytes
    {"\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\""},             // UTF-16 surrogate
    {"\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\""},  // above U+10FFFF
    {"x\xe2\x82", "\"x\\ufffd\\ufffd\""},                      // cut short at the end
    {"\x80z", "\"\\ufffdz\""},                                 // stray continuation byte
};

// Runs `write` on a Json over a memory stream and returns the text.
template <typename F>
std::string render(F write) {
    char* data = nullptr;
    std::size_t size = 0;
    std::FILE* mem = open_memstream(&data, &size);
    if (mem == nullptr) std::abort();
    {
        Json j(mem);
        write(j);
    }
    std::fclose(mem);
    std::string text(data, size);
    std::free(data);
    return text;
}

int g_failures = 0;

void expect(const std::string& got, const std::string& want, const char* what) {
    if (got != want) {
        std::fprintf(stderr, "FAIL %s:\n  got  %s\n  want %s\n", what, got.c_str(), want.c_str());
        ++g_failures;
    }
}

}  // namespace

int main() {
    for (const Case& c : kCases) {
        expect(render([&](Json& j) { j.string(c.input); }), c.expected, "string escape");
        // Keys are escaped the same way.
        expect(render([&](Json& j) {
                   j.begin_object();
                   j.field_null(c.input);
                   j.end_object();
               }),
               std::string("{") + c.expected + ":null}", "key escape");
    }
    expect(render([](Json& j) {
               j.begin_object();
               j.field("a", "x");
               j.key("b");
               j.begin_array();
               j.end_array();
               j.key("c");
               j.begin_object();
               j.end_object();
               j.key("d");
               j.begin_array();
               j.integer(1);
               j.integer(-2);
               j.unsigned_integer(18446744073709551615ULL);
               j.boolean(true);
               j.boolean(false);
               j.null();
               j.string_or_null(nullptr);
               j.string("s");
               j.end_array();
               j.key("e");
               j.begin_object();
               j.key("k");
               j.begin_array();
               j.begin_object();
               j.field_int("z", 1);
               j.end_object();
               j.begin_object();
               j.end_object();
               j.end_array();
               j.end_object();
               j.end_object();
           }),
           "{\"a\":\"x\",\"b\":[],\"c\":{},\"d\":[1,-2,18446744073709551615,true,false,null,"
           "null,\"s\"],\"e\":{\"k\":[{\"z\":1},{}]}}",
           "structure and commas");

    // Every case in one document, for the strict parser in run_check.
    Json out(stdout);
    out.begin_object();
    out.key("cases");
    out.begin_array();
    for (const Case& c : kCases) out.string(c.input);
    out.end_array();
    out.end_object();
    std::fputc('\n', stdout);
    return g_failures == 0 ? 0 : 1;
}
