// SPDX-License-Identifier: Apache-2.0
// Summaries and the Markdown table that bench-nop and bench-run print. A table holds
// cells (a group such as "batch 32", and an implementation in it); each cell collects
// one rate per round, and the rates of one round were measured side by side, so the
// ratio to the group's baseline is taken per round (paired) before its median.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace luring::bench {

struct Summary {
    double median = 0;
    double min = 0;
    double max = 0;
};

inline double median_of(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

inline Summary summarize(const std::vector<double>& v) {
    if (v.empty()) return {};
    auto [lo, hi] = std::minmax_element(v.begin(), v.end());
    return {median_of(v), *lo, *hi};
}

// 1234567 -> "1.23 M": three significant digits are all the noise allows.
inline std::string si(double v) {
    char buf[32];
    if (v >= 1e6) {
        std::snprintf(buf, sizeof(buf), "%.3g M", v / 1e6);
    } else if (v >= 1e3) {
        std::snprintf(buf, sizeof(buf), "%.3g k", v / 1e3);
    } else {
        std::snprintf(buf, sizeof(buf), "%.3g", v);
    }
    return buf;
}

inline std::string fixed(double v, int digits) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.*f", digits, v);
    return buf;
}

struct Cell {
    std::string group;  // shown in the first column; cells of a group share a baseline
    std::string impl;
    bool baseline = false;      // the group's reference (ratio 1)
    bool available = true;      // false: skipped (exit 77), shown as n/a
    std::vector<double> rates;  // operations per second, one per round
};

// The order cells are measured in during round `round`: forwards on even rounds,
// backwards on odd ones (A B C, C B A, ...), so a slow drift of the machine hits every
// implementation alike instead of always the one measured last.
inline std::vector<std::size_t> round_order(std::size_t n, int round) {
    std::vector<std::size_t> order(n);
    for (std::size_t i = 0; i < n; ++i) order[i] = round % 2 == 0 ? i : n - 1 - i;
    return order;
}

// Prints the table. `group_title` names the first column ("" for no group column);
// `baseline_name` heads the ratio column.
inline void print_table(const std::vector<Cell>& cells, std::string_view group_title,
                        std::string_view baseline_name, std::string_view unit) {
    const bool groups = !group_title.empty();
    std::printf("| %s%s%s | median %s/s | ns/%s | min – max %s/s | spread | vs %s (min – max) |\n",
                groups ? std::string(group_title).c_str() : "", groups ? " | " : "",
                "implementation", std::string(unit).c_str(), std::string(unit).c_str(),
                std::string(unit).c_str(), std::string(baseline_name).c_str());
    std::printf("|%s---|---:|---:|---:|---:|---:|\n", groups ? "---|" : "");
    for (const Cell& c : cells) {
        std::string lead = groups ? c.group + " | " + c.impl : c.impl;
        if (!c.available || c.rates.empty()) {
            std::printf("| %s | n/a | | | | |\n", lead.c_str());
            continue;
        }
        const Summary s = summarize(c.rates);
        // The baseline of this cell's group, measured in the same rounds.
        const Cell* base = nullptr;
        for (const Cell& b : cells) {
            if (b.baseline && b.group == c.group && b.available &&
                b.rates.size() == c.rates.size()) {
                base = &b;
            }
        }
        std::string ratio = "–";
        if (base != nullptr) {
            std::vector<double> r;
            for (std::size_t i = 0; i < c.rates.size(); ++i) {
                r.push_back(c.rates[i] / base->rates[i]);
            }
            const Summary rs = summarize(r);
            ratio = fixed(rs.median, 2) + " (" + fixed(rs.min, 2) + " – " + fixed(rs.max, 2) + ")";
            if (base == &c) ratio = "1";
        }
        std::printf("| %s | %s | %s | %s – %s | %s%% | %s |\n", lead.c_str(), si(s.median).c_str(),
                    fixed(1e9 / s.median, 0).c_str(), si(s.min).c_str(), si(s.max).c_str(),
                    fixed(100.0 * (s.max - s.min) / s.median, 0).c_str(), ratio.c_str());
    }
    std::fflush(stdout);
}

// Rounds and durations: the defaults, LURING_BENCH_QUICK=1 for a smoke run, then flags.
struct Plan {
    int rounds = 7;
    double seconds = 0.25;
    double warmup = 0.05;
    bool quick = false;

    void make_quick() {
        quick = true;
        rounds = 3;
        seconds = 0.04;
        warmup = 0.01;
    }

    Plan() {
        const char* q = std::getenv("LURING_BENCH_QUICK");
        if (q != nullptr && *q != '\0' && std::string_view(q) != "0") make_quick();
    }

    // Consumes a plan option at argv[i] (advancing i over its value); false if not one.
    bool parse(int argc, char** argv, int& i) {
        std::string_view opt = argv[i];
        if (opt == "--quick") {
            make_quick();
            return true;
        }
        if (i + 1 >= argc) return false;
        if (opt == "--rounds") {
            rounds = std::max(1, std::atoi(argv[++i]));
        } else if (opt == "--seconds") {
            seconds = std::strtod(argv[++i], nullptr);
        } else if (opt == "--warmup") {
            warmup = std::strtod(argv[++i], nullptr);
        } else {
            return false;
        }
        return true;
    }

    std::string describe() const {
        return std::to_string(rounds) + " rounds, " + fixed(seconds, 2) + " s measured (after " +
               fixed(warmup, 2) + " s warm-up) per implementation per round" +
               (quick ? " (quick run: numbers are rough)" : "");
    }
};

}  // namespace luring::bench
