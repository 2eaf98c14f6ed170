// SPDX-License-Identifier: Apache-2.0
// run_check: runs a command (luring-probe, possibly under seccomp_exec), then checks its
// exit status, its standard output and, for --json, that the output is valid JSON with
// the shape luring-probe promises. A strict JSON parser lives here so the tests need
// nothing beyond a C++ compiler (no python3, no jq).
//
//   run_check [--exit N[,N...]] [--skip-if-exit N] [--skip-if-has TEXT] [--has TEXT]...
//             [--lacks TEXT]... [--json-valid | --json-available | --json-unavailable CAUSE ERRNO
//              | --json-no-probe | --json-no-query ERRNO] -- cmd args...
//
// Exits 0 when every check passes, 1 otherwise (saying which), 77 to skip.
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

constexpr int kExitSkip = 77;

// ---- a strict JSON (RFC 8259) parser -----------------------------------------------------

struct Value {
    enum Type { null, boolean, number, string, array, object } type = null;
    bool b = false;
    double num = 0;
    std::string str;
    std::vector<Value> items;                            // array
    std::vector<std::pair<std::string, Value>> members;  // object, in order

    const Value* get(std::string_view key) const {
        for (const auto& m : members) {
            if (m.first == key) return &m.second;
        }
        return nullptr;
    }
};

class Parser {
public:
    explicit Parser(std::string_view text) : s_(text) {}

    // Parses the whole text as one value; on failure `error()` says where and why.
    bool parse(Value& out) {
        skip_ws();
        if (!value(out, 0)) return false;
        skip_ws();
        if (pos_ != s_.size()) return fail("trailing characters after the value");
        return true;
    }
    const std::string& error() const { return error_; }

private:
    bool fail(const char* why) {
        if (error_.empty()) error_ = std::string(why) + " at byte " + std::to_string(pos_);
        return false;
    }
    void skip_ws() {
        while (pos_ < s_.size() &&
               (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) {
            ++pos_;
        }
    }
    bool literal(std::string_view word) {
        if (s_.substr(pos_, word.size()) != word) return fail("bad literal");
        pos_ += word.size();
        return true;
    }

    bool value(Value& v, int depth) {
        if (depth > 64) return fail("nested too deeply");
        if (pos_ >= s_.size()) return fail("unexpected end");
        switch (s_[pos_]) {
            case '{':
                return object(v, depth);
            case '[':
                return array(v, depth);
            case '"':
                v.type = Value::string;
                return string(v.str);
            case 't':
                v.type = Value::boolean;
                v.b = true;
                return literal("true");
            case 'f':
                v.type = Value::boolean;
                v.b = false;
                return literal("false");
            case 'n':
                v.type = Value::null;
                return literal("null");
            default:
                return number(v);
        }
    }

    bool object(Value& v, int depth) {
        v.type = Value::object;
        ++pos_;
        skip_ws();
        if (pos_ < s_.size() && s_[pos_] == '}') return ++pos_, true;
        std::set<std::string> seen;
        while (true) {
            skip_ws();
            std::string key;
            if (pos_ >= s_.size() || s_[pos_] != '"') return fail("expected a key");
            if (!string(key)) return false;
            if (!seen.insert(key).second) return fail("duplicate key");
            skip_ws();
            if (pos_ >= s_.size() || s_[pos_] != ':') return fail("expected ':'");
            ++pos_;
            skip_ws();
            Value member;
            if (!value(member, depth + 1)) return false;
            v.members.emplace_back(std::move(key), std::move(member));
            skip_ws();
            if (pos_ < s_.size() && s_[pos_] == ',') {
                ++pos_;
                continue;
            }
            if (pos_ < s_.size() && s_[pos_] == '}') return ++pos_, true;
            return fail("expected ',' or '}'");
        }
    }

    bool array(Value& v, int depth) {
        v.type = Value::array;
        ++pos_;
        skip_ws();
        if (pos_ < s_.size() && s_[pos_] == ']') return ++pos_, true;
        while (true) {
            skip_ws();
            Value item;
            if (!value(item, depth + 1)) return false;
            v.items.push_back(std::move(item));
            skip_ws();
            if (pos_ < s_.size() && s_[pos_] == ',') {
                ++pos_;
                continue;
            }
            if (pos_ < s_.size() && s_[pos_] == ']') return ++pos_, true;
            return fail("expected ',' or ']'");
        }
    }

    bool number(Value& v) {
        const std::size_t start = pos_;
        auto digits = [this] {
            const std::size_t from = pos_;
            while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
            return pos_ - from;
        };
        if (pos_ < s_.size() && s_[pos_] == '-') ++pos_;
        if (pos_ < s_.size() && s_[pos_] == '0') {
            ++pos_;
        } else if (digits() == 0) {
            return fail("bad number");
        }
        if (pos_ < s_.size() && s_[pos_] == '.') {
            ++pos_;
            if (digits() == 0) return fail("bad fraction");
        }
        if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
            ++pos_;
            if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
            if (digits() == 0) return fail("bad exponent");
        }
        v.type = Value::number;
        v.num = std::strtod(std::string(s_.substr(start, pos_ - start)).c_str(), nullptr);
        return true;
    }

    bool hex4(unsigned& out) {
        if (pos_ + 4 > s_.size()) return fail("short \\u escape");
        out = 0;
        for (int i = 0; i < 4; ++i) {
            const char c = s_[pos_++];
            out <<= 4;
            if (c >= '0' && c <= '9')
                out |= static_cast<unsigned>(c - '0');
            else if (c >= 'a' && c <= 'f')
                out |= static_cast<unsigned>(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F')
                out |= static_cast<unsigned>(c - 'A' + 10);
            else
                return fail("bad hex digit in \\u escape");
        }
        return true;
    }

    static void put_utf8(std::string& out, unsigned cp) {
        if (cp < 0x80) {
            out += static_cast<char>(cp);
        } else if (cp < 0x800) {
            out += static_cast<char>(0xC0 | (cp >> 6));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            out += static_cast<char>(0xE0 | (cp >> 12));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else {
            out += static_cast<char>(0xF0 | (cp >> 18));
            out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        }
    }

    // Length of a valid UTF-8 sequence at pos_ (RFC 3629), or 0.
    std::size_t utf8_at() const {
        auto at = [this](std::size_t k) -> unsigned {
            return pos_ + k < s_.size() ? static_cast<unsigned char>(s_[pos_ + k]) : 0U;
        };
        auto cont = [](unsigned b) { return (b & 0xC0U) == 0x80U; };
        const unsigned c = at(0);
        if (c >= 0xC2 && c <= 0xDF) return cont(at(1)) ? 2 : 0;
        if (c >= 0xE0 && c <= 0xEF) {
            if (!cont(at(1)) || !cont(at(2))) return 0;
            if ((c == 0xE0 && at(1) < 0xA0) || (c == 0xED && at(1) >= 0xA0)) return 0;
            return 3;
        }
        if (c >= 0xF0 && c <= 0xF4) {
            if (!cont(at(1)) || !cont(at(2)) || !cont(at(3))) return 0;
            if ((c == 0xF0 && at(1) < 0x90) || (c == 0xF4 && at(1) >= 0x90)) return 0;
            return 4;
        }
        return 0;
    }

    bool string(std::string& out) {
        ++pos_;  // the opening quote
        while (true) {
            if (pos_ >= s_.size()) return fail("unterminated string");
            const auto c = static_cast<unsigned char>(s_[pos_]);
            if (c == '"') {
                ++pos_;
                return true;
            }
            if (c < 0x20) return fail("raw control character in string");
            if (c == '\\') {
                if (++pos_ >= s_.size()) return fail("unterminated escape");
                const char e = s_[pos_++];
                switch (e) {
                    case '"':
                        out += '"';
                        break;
                    case '\\':
                        out += '\\';
                        break;
                    case '/':
                        out += '/';
                        break;
                    case 'b':
                        out += '\b';
                        break;
                    case 'f':
                        out += '\f';
                        break;
                    case 'n':
                        out += '\n';
                        break;
                    case 'r':
                        out += '\r';
                        break;
                    case 't':
                        out += '\t';
                        break;
                    case 'u': {
                        unsigned cp = 0;
                        if (!hex4(cp)) return false;
                        if (cp >= 0xDC00 && cp <= 0xDFFF) return fail("lone low surrogate");
                        if (cp >= 0xD800 && cp <= 0xDBFF) {
                            unsigned low = 0;
                            if (s_.substr(pos_, 2) != "\\u") return fail("lone high surrogate");
                            pos_ += 2;
                            if (!hex4(low)) return false;
                            if (low < 0xDC00 || low > 0xDFFF) return fail("bad surrogate pair");
                            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                        }
                        put_utf8(out, cp);
                        break;
                    }
                    default:
                        return fail("bad escape");
                }
            } else if (c < 0x80) {
                out += static_cast<char>(c);
                ++pos_;
            } else {
                const std::size_t n = utf8_at();
                if (n == 0) return fail("invalid UTF-8 in string");
                out.append(s_.substr(pos_, n));
                pos_ += n;
            }
        }
    }

    std::string_view s_;
    std::size_t pos_ = 0;
    std::string error_;
};

// ---- checks ------------------------------------------------------------------------------

int g_failures = 0;

void check(bool ok, const std::string& what) {
    if (!ok) {
        std::fprintf(stderr, "FAIL: %s\n", what.c_str());
        ++g_failures;
    }
}

bool is(const Value* v, Value::Type t) { return v != nullptr && v->type == t; }

bool is_int(const Value* v) {
    return is(v, Value::number) && std::floor(v->num) == v->num && std::fabs(v->num) < 1e15;
}

// Shape of the keys the issue promises, whatever the availability.
void check_common_shape(const Value& root) {
    check(root.type == Value::object, "top level is an object");
    check(is(root.get("available"), Value::boolean), "available is a bool");
    const Value* error = root.get("error");
    check(is(error, Value::string) || is(error, Value::null), "error is a string or null");
    const Value* err = root.get("errno");
    check(is_int(err) || is(err, Value::null), "errno is an int or null");
    check(is(root.get("kernel"), Value::string) && !root.get("kernel")->str.empty(),
          "kernel is a non-empty string");
    const Value* disabled = root.get("io_uring_disabled");
    check(is_int(disabled) || is(disabled, Value::null), "io_uring_disabled is an int or null");
    const Value* features = root.get("features");
    check(is(features, Value::object), "features is an object");
    if (is(features, Value::object)) {
        check(is_int(features->get("value")), "features.value is an int");
        const Value* names = features->get("names");
        check(is(names, Value::array), "features.names is an array");
        if (is(names, Value::array)) {
            for (const Value& n : names->items) {
                check(n.type == Value::string, "features.names holds strings");
            }
            // One name (or hex string) per set bit.
            if (is_int(features->get("value"))) {
                const auto bits = static_cast<std::uint64_t>(features->get("value")->num);
                check(names->items.size() == static_cast<std::size_t>(__builtin_popcountll(bits)),
                      "one feature name per set bit");
            }
        }
    }
    const Value* ops = root.get("ops");
    check(is(ops, Value::array), "ops is an array");
    if (is(ops, Value::array)) {
        std::set<std::string> names;
        double expect_code = 0;
        for (const Value& op : ops->items) {
            check(is_int(op.get("code")), "ops[].code is an int");
            check(is(op.get("name"), Value::string), "ops[].name is a string");
            check(is(op.get("supported"), Value::boolean), "ops[].supported is a bool");
            if (is_int(op.get("code"))) {
                check(op.get("code")->num == expect_code, "ops are listed 0, 1, 2, ...");
            }
            expect_code += 1;
            if (is(op.get("name"), Value::string)) {
                check(names.insert(op.get("name")->str).second,
                      "opcode name unique: " + op.get("name")->str);
            }
        }
    }
    const Value* flags = root.get("setup_flags");
    check(is(flags, Value::array), "setup_flags is an array");
    if (is(flags, Value::array)) {
        std::set<std::string> names;
        for (const Value& f : flags->items) {
            check(is(f.get("name"), Value::string), "setup_flags[].name is a string");
            check(is_int(f.get("value")), "setup_flags[].value is an int");
            check(is(f.get("supported"), Value::boolean), "setup_flags[].supported is a bool");
            if (is(f.get("name"), Value::string)) {
                check(names.insert(f.get("name")->str).second,
                      "setup flag name unique: " + f.get("name")->str);
            }
        }
    }
}

bool op_supported(const Value& root, std::string_view name) {
    const Value* ops = root.get("ops");
    if (!is(ops, Value::array)) return false;
    for (const Value& op : ops->items) {
        const Value* n = op.get("name");
        const Value* s = op.get("supported");
        if (is(n, Value::string) && n->str == name) return is(s, Value::boolean) && s->b;
    }
    return false;
}

void check_available(const Value& root) {
    const Value* available = root.get("available");
    check(is(available, Value::boolean) && available->b, "available is true");
    check(is(root.get("error"), Value::null), "error is null when available");
    check(is(root.get("errno"), Value::null), "errno is null when available");
    for (const char* op : {"nop", "read", "write"}) {
        check(op_supported(root, op), std::string(op) + " is supported");
    }
    const Value* ops = root.get("ops");
    const Value* probe = root.get("probe");
    if (is(probe, Value::object) && is_int(probe->get("last_op")) && is(ops, Value::array)) {
        check(ops->items.size() == static_cast<std::size_t>(probe->get("last_op")->num) + 1,
              "ops lists 0..last_op");
    }
    const Value* flags = root.get("setup_flags");
    check(is(flags, Value::array) && flags->items.size() >= 19, "every 6.18 setup flag listed");
    // Where the kernel has IORING_REGISTER_QUERY, what it says must match what we saw.
    const Value* query = root.get("query");
    const Value* features = root.get("features");
    if (is(query, Value::object) && is(query->get("supported"), Value::boolean) &&
        query->get("supported")->b) {
        check(is_int(query->get("feature_flags")) && is(features, Value::object) &&
                  is_int(features->get("value")) &&
                  query->get("feature_flags")->num == features->get("value")->num,
              "query.feature_flags equals the default ring's features");
        if (is(ops, Value::array) && is_int(query->get("nr_request_opcodes"))) {
            check(query->get("nr_request_opcodes")->num == static_cast<double>(ops->items.size()),
                  "query.nr_request_opcodes equals the probe's op count");
        }
        const Value* mask = query->get("ring_setup_flags");
        if (is_int(mask) && is(flags, Value::array)) {
            const auto bits = static_cast<std::uint64_t>(mask->num);
            for (const Value& f : flags->items) {
                const Value* status = f.get("status");
                if (!is(status, Value::string) || !is_int(f.get("value"))) continue;
                const bool known = (bits & static_cast<std::uint64_t>(f.get("value")->num)) != 0;
                if (status->str == "supported" || status->str == "unsupported") {
                    check(known == (status->str == "supported"),
                          "setup flag " + f.get("name")->str + " agrees with the query mask");
                }
            }
        }
    }
}

void check_unavailable(const Value& root, const char* cause, int err) {
    const Value* available = root.get("available");
    check(is(available, Value::boolean) && !available->b, "available is false");
    check(is(root.get("error"), Value::string) && !root.get("error")->str.empty(),
          "error is a non-empty string");
    check(is_int(root.get("errno")) && root.get("errno")->num == err,
          "errno is " + std::to_string(err));
    const Value* c = root.get("cause");
    check(is(c, Value::string) && c->str == cause, std::string("cause is ") + cause + " (got " +
                                                       (is(c, Value::string) ? c->str : "?") + ")");
    check(is(root.get("reason"), Value::string) && !root.get("reason")->str.empty(),
          "reason is a non-empty string");
    check(is(root.get("fix"), Value::string) && !root.get("fix")->str.empty(),
          "fix is a non-empty string");
    const Value* ops = root.get("ops");
    check(is(ops, Value::array) && ops->items.empty(), "ops is empty");
}

void check_no_probe(const Value& root) {
    const Value* available = root.get("available");
    check(is(available, Value::boolean) && available->b, "available is true without the probe");
    const Value* probe = root.get("probe");
    check(is(probe, Value::object) && is(probe->get("supported"), Value::boolean) &&
              !probe->get("supported")->b,
          "probe.supported is false");
    check(is(probe, Value::object) && is(probe->get("last_op"), Value::null),
          "probe.last_op is null");
    const Value* ops = root.get("ops");
    check(is(ops, Value::array) && ops->items.empty(), "ops is empty without the probe");
}

void check_no_query(const Value& root, int err) {
    const Value* query = root.get("query");
    check(is(query, Value::object) && is(query->get("supported"), Value::boolean) &&
              !query->get("supported")->b,
          "query.supported is false");
    check(
        is(query, Value::object) && is_int(query->get("errno")) && query->get("errno")->num == err,
        "query.errno is " + std::to_string(err));
}

// ---- running the command ----------------------------------------------------------------

// Runs argv with stdout captured; returns the wait status, or -1.
int run(char** argv, std::string& out) {
    int fds[2];
    if (pipe(fds) != 0) return -1;
    const pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        execvp(argv[0], argv);
        std::fprintf(stderr, "run_check: cannot run %s: %s\n", argv[0], std::strerror(errno));
        _exit(127);
    }
    close(fds[1]);
    char buf[4096];
    while (true) {
        const ssize_t n = read(fds[0], buf, sizeof buf);
        if (n > 0) {
            out.append(buf, static_cast<std::size_t>(n));
        } else if (n == 0 || errno != EINTR) {
            break;
        }
    }
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) return -1;
    }
    return status;
}

// "0,2" -> {0, 2}; stops at the first thing that is not a number.
std::vector<int> parse_list(const char* text) {
    std::vector<int> values;
    for (const char* p = text; *p != 0;) {
        char* end = nullptr;
        const long v = std::strtol(p, &end, 10);
        if (end == p) break;
        values.push_back(static_cast<int>(v));
        p = (*end == ',') ? end + 1 : end;
    }
    return values;
}

void usage() {
    std::fprintf(stderr,
                 "usage: run_check [--exit N[,N...]] [--skip-if-exit N] [--skip-if-has TEXT] "
                 "[--has TEXT] [--lacks TEXT] [--json-valid | --json-available | --json-unavailable CAUSE "
                 "ERRNO | --json-no-probe | --json-no-query ERRNO] -- cmd args...\n");
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<int> exits{0};
    std::vector<int> skip_exits{kExitSkip};
    std::vector<std::string> has, lacks, skip_has;
    enum class Mode { none, valid, available, unavailable, no_probe, no_query } mode = Mode::none;
    const char* cause = "";
    int err = 0;
    int i = 1;
    for (; i < argc; ++i) {
        const std::string_view a(argv[i]);
        const bool more = i + 1 < argc;
        if (a == "--") {
            ++i;
            break;
        } else if (a == "--exit" && more) {
            exits = parse_list(argv[++i]);
        } else if (a == "--skip-if-exit" && more) {
            skip_exits.push_back(std::atoi(argv[++i]));
        } else if (a == "--skip-if-has" && more) {
            skip_has.emplace_back(argv[++i]);
        } else if (a == "--has" && more) {
            has.emplace_back(argv[++i]);
        } else if (a == "--lacks" && more) {
            lacks.emplace_back(argv[++i]);
        } else if (a == "--json-valid") {
            mode = Mode::valid;
        } else if (a == "--json-available") {
            mode = Mode::available;
        } else if (a == "--json-no-probe") {
            mode = Mode::no_probe;
        } else if (a == "--json-no-query" && more) {
            mode = Mode::no_query;
            err = std::atoi(argv[++i]);
        } else if (a == "--json-unavailable" && i + 2 < argc) {
            mode = Mode::unavailable;
            cause = argv[++i];
            err = std::atoi(argv[++i]);
        } else {
            usage();
            return 1;
        }
    }
    if (i >= argc) {
        usage();
        return 1;
    }

    std::string out;
    const int status = run(argv + i, out);
    if (status == -1) {
        std::fprintf(stderr, "run_check: could not run the command\n");
        return 1;
    }
    std::fprintf(stderr, "---- stdout of %s ----\n%s---- end ----\n", argv[i], out.c_str());
    if (WIFSIGNALED(status)) {
        std::fprintf(stderr, "FAIL: killed by signal %d (a crash)\n", WTERMSIG(status));
        return 1;
    }
    const int code = WEXITSTATUS(status);
    bool expected = false;
    for (int e : exits) expected = expected || e == code;
    if (!expected) {
        for (int s : skip_exits) {
            if (s == code) {
                std::printf("skipped: the command exited %d\n", code);
                return kExitSkip;
            }
        }
    }
    // What the output says can make a check meaningless here (io_uring unavailable).
    for (const std::string& text : skip_has) {
        if (out.find(text) != std::string::npos) {
            std::printf("skipped: the output says \"%s\"\n", text.c_str());
            return kExitSkip;
        }
    }
    check(expected, "exit status " + std::to_string(code) + " is one of those expected");

    for (const std::string& text : has) {
        check(out.find(text) != std::string::npos, "stdout contains \"" + text + "\"");
    }
    for (const std::string& text : lacks) {
        check(out.find(text) == std::string::npos, "stdout lacks \"" + text + "\"");
    }
    if (mode != Mode::none) {
        Value root;
        Parser parser(out);
        if (!parser.parse(root)) {
            check(false, "stdout is valid JSON: " + parser.error());
        } else if (mode != Mode::valid) {
            check_common_shape(root);
            switch (mode) {
                case Mode::available:
                    check_available(root);
                    break;
                case Mode::unavailable:
                    check_unavailable(root, cause, err);
                    break;
                case Mode::no_probe:
                    check_no_probe(root);
                    break;
                case Mode::no_query:
                    check_no_query(root, err);
                    break;
                case Mode::none:
                case Mode::valid:
                    break;
            }
        }
    }
    if (g_failures != 0) {
        std::fprintf(stderr, "%d check(s) failed\n", g_failures);
        return 1;
    }
    std::printf("ok\n");
    return 0;
}
