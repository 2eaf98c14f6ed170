// SPDX-License-Identifier: Apache-2.0
// SubmissionQueue::order_receives_last over plain memory: which batches it reorders, that
// each group keeps its order, that published SQEs stay put, across the ring's wrap.
#include <array>
#include <string>

#include "helpers.hpp"
#include "sq.hpp"

using namespace luring::uring;

namespace {

// A 64-entry SQ: head, tail, mask, entries, flags, dropped, then the index array.
struct FakeSq {
    static constexpr std::uint32_t kEntries = 64;
    alignas(64) std::array<std::byte, 64 + 4 * kEntries> mem{};
    std::array<Sqe, kEntries> sqes{};
    SubmissionQueue sq;

    std::uint32_t& word(std::uint32_t off) { return *reinterpret_cast<std::uint32_t*>(&mem[off]); }

    explicit FakeSq(std::uint32_t start, bool on = true) {
        word(0) = start; word(4) = start; word(8) = kEntries - 1; word(12) = kEntries;
        SqringOffsets o{};
        o.head = 0; o.tail = 4; o.ring_mask = 8; o.ring_entries = 12;
        o.flags = 16; o.dropped = 20; o.array = 64;
        sq.attach(mem.data(), o, sqes.data(), true);
        if (on) sq.set_receives_last(true);
    }

    // Queues one SQE per letter: r a recv, s a send, c a cancel; L adds IO_LINK to the
    // one before it. user_data numbers them from 1.
    void queue(const std::string& ops) {
        for (char c : ops) {
            if (c == 'L') {
                last->flags |= sqe_flag::io_link;
                continue;
            }
            last = sq.get_sqe();
            REQUIRE(last != nullptr);
            last->opcode = static_cast<std::uint8_t>(c == 'r'   ? Op::recv
                                                      : c == 's' ? Op::send
                                                                 : Op::async_cancel);
            last->user_data = ++n;
        }
    }

    // The user_data of the SQEs published and not consumed, in ring order; then the
    // "kernel" consumes them.
    std::string consume() {
        std::string out;
        for (std::uint32_t p = word(0); p != word(4); ++p) {
            if (!out.empty()) out += ' ';
            out += std::to_string(sqes[p & (kEntries - 1)].user_data);
        }
        word(0) = word(4);
        return out;
    }

    Sqe* last = nullptr;
    std::uint64_t n = 0;
};

}  // namespace

TEST_CASE("sq order: receives go after the batch's other requests, each group in order") {
    FakeSq f(0xffff'fffaU);  // the batch wraps the u32 counters and the ring's end
    f.queue("rsrrss");
    f.sq.flush();
    CHECK(f.consume() == "2 5 6 1 3 4");
}

TEST_CASE("sq order: off by default, and off again when set so") {
    FakeSq f(0, false);
    f.queue("rsr");
    f.sq.flush();
    CHECK(f.consume() == "1 2 3");
    FakeSq g(0);
    g.sq.set_receives_last(false);
    g.queue("rs");
    g.sq.flush();
    CHECK(g.consume() == "1 2");
}

TEST_CASE("sq order: a link or a cancel keeps the whole batch as queued") {
    FakeSq f(0);
    f.queue("rLs");  // recv linked to the send
    f.sq.flush();
    CHECK(f.consume() == "1 2");
    f.queue("rsc");  // a cancel may target the recv: it must stay after it
    f.sq.flush();
    CHECK(f.consume() == "3 4 5");
}

TEST_CASE("sq order: SQEs already published stay where they are") {
    FakeSq f(7);
    f.queue("r");
    f.sq.flush();  // published, not yet consumed by the "kernel"
    f.queue("s");
    f.sq.flush();
    CHECK(f.consume() == "1 2");
}

TEST_CASE("sq order: more receives than the buffer holds, across the wrap") {
    FakeSq f(0xffff'ffe0U);
    // 40 receives, then 2 sends: the first 32 receives are laid down when the buffer
    // fills, so the sends pass only the last 8.
    std::string ops(40, 'r');
    ops += "ss";
    f.queue(ops);
    f.sq.flush();
    std::string want;
    for (int i = 1; i <= 32; ++i) want += std::to_string(i) + " ";
    want += "41 42";
    for (int i = 33; i <= 40; ++i) want += " " + std::to_string(i);
    CHECK(f.consume() == want);
}
