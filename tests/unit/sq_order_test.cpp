// SPDX-License-Identifier: Apache-2.0
// SubmissionQueue::order_receives_last over plain memory: which batches it reorders, that
// each group keeps its order, that published SQEs stay put, across the ring's wrap.
#include <array>
#include <string>

#include "helpers.hpp"
#include "sq.hpp"

using namespace luring::uring;

namespace {

// A 128-entry SQ: head, tail, mask, entries, flags, dropped, then the index array.
struct FakeSq {
    static constexpr std::uint32_t kEntries = 128;
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

    // Queues one SQE per letter: r a recv, s a send, c a cancel, x the op `other` (a
    // cancel unless set); L, H and D add IO_LINK, IO_HARDLINK or IO_DRAIN to the one
    // before it. user_data numbers them from 1.
    void queue(const std::string& ops) {
        for (char c : ops) {
            if (c == 'L' || c == 'H' || c == 'D') {
                last->flags |= c == 'L' ? sqe_flag::io_link
                             : c == 'H' ? sqe_flag::io_hardlink
                                        : sqe_flag::io_drain;
                continue;
            }
            last = sq.get_sqe();
            REQUIRE(last != nullptr);
            last->opcode = static_cast<std::uint8_t>(c == 'r'   ? Op::recv
                                                      : c == 's' ? Op::send
                                                      : c == 'x' ? other
                                                                 : Op::async_cancel);
            last->off = c == 'x' ? other_off : 0;
            last->user_data = ++n;
        }
    }

    Op other = Op::async_cancel;
    std::uint64_t other_off = 0;

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

    // queue(ops), flush, consume: the order they were published in.
    std::string publish(const std::string& ops) {
        queue(ops);
        sq.flush();
        return consume();
    }

    Sqe* last = nullptr;
    std::uint64_t n = 0;
};

// "a a+1 ... b": the user_data of SQEs a to b, as consume() writes them.
std::string numbers(std::uint64_t a, std::uint64_t b) {
    std::string out;
    for (std::uint64_t k = a; k <= b; ++k) {
        if (!out.empty()) out += ' ';
        out += std::to_string(k);
    }
    return out;
}

}  // namespace

TEST_CASE("sq order: receives go after the batch's other requests, each group in order") {
    FakeSq f(0xffff'fffaU);  // the batch wraps the u32 counters and the ring's end
    CHECK(f.publish("rsrrss") == "2 5 6 1 3 4");
}

TEST_CASE("sq order: off by default, and off again when set so") {
    FakeSq f(0, false);
    CHECK(f.publish("rsr") == "1 2 3");
    FakeSq g(0);
    g.sq.set_receives_last(false);
    CHECK(g.publish("rs") == "1 2");
}

TEST_CASE("sq order: a link or a drain keeps the whole batch as queued") {
    FakeSq f(0);
    for (const char* ops : {"rLs", "rHs", "rsD", "srDrs"}) {
        CAPTURE(ops);
        const std::uint64_t first = f.n + 1;
        const std::string got = f.publish(ops);
        CHECK(got == numbers(first, f.n));
    }
}

TEST_CASE("sq order: only sends, writes, NOPs and pure timers are passed; others are barriers") {
    // A cancel after a recv must still find it queued first, and so on: a receive never
    // crosses an op that is not passable, but the stretches on each side are reordered.
    for (Op op : {Op::async_cancel, Op::close, Op::shutdown, Op::poll_remove,
                  Op::timeout_remove, Op::files_update, Op::accept, Op::connect,
                  Op::read, Op::recvmsg, Op::msg_ring, Op::provide_buffers,
                  Op::remove_buffers, Op::uring_cmd, Op::fixed_fd_install, Op::openat}) {
        CAPTURE(static_cast<int>(op));
        FakeSq f(0);
        f.other = op;
        CHECK(f.publish("rsxrs") == "2 1 3 5 4");
    }
    for (Op op : {Op::send, Op::sendmsg, Op::send_zc, Op::sendmsg_zc, Op::write, Op::writev,
                  Op::write_fixed, Op::writev_fixed, Op::nop, Op::timeout}) {
        CAPTURE(static_cast<int>(op));
        FakeSq f(0);
        f.other = op;
        CHECK(f.publish("rxs") == "2 3 1");
    }
    FakeSq f(0);  // a timeout that counts completions is a barrier
    f.other = Op::timeout;
    f.other_off = 1;
    CHECK(f.publish("rxs") == "1 2 3");
}

TEST_CASE("sq order: SQEs already published stay where they are") {
    FakeSq f(7);
    f.queue("r");
    f.sq.flush();  // published, not yet consumed by the "kernel"
    CHECK(f.publish("s") == "1 2");
}

TEST_CASE("sq order: receives wait in the free SQ slots, or in a buffer of 32") {
    // 40 receives, then 2 sends: 86 slots are free, room for all of them. Across the wrap.
    FakeSq f(0xffff'ffe0U);
    CHECK(f.publish(std::string(40, 'r') + "ss") == numbers(41, 42) + " " + numbers(1, 40));
    // 100 receives and 2 sends leave 26 free, too few: a buffer of 32 takes the receives,
    // laid down each time it fills, so the sends pass only the last 4.
    FakeSq g(0xffff'fff0U);
    CHECK(g.publish(std::string(100, 'r') + "ss") ==
          numbers(1, 96) + " " + numbers(101, 102) + " " + numbers(97, 100));
    // With SQEs published and not yet consumed, the scratch area is only the slots past
    // them: 60 published, then 33 receives and 2 sends leave 33 free.
    FakeSq h(0xffff'fff8U);
    h.queue(std::string(60, 's'));
    h.sq.flush();
    CHECK(h.publish(std::string(33, 'r') + "ss") ==
          numbers(1, 60) + " " + numbers(94, 95) + " " + numbers(61, 93));
}
