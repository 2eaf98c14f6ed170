// SPDX-License-Identifier: Apache-2.0
// Ring index math without the kernel: the queues laid over plain, aligned memory with
// made-up offsets, counters started near UINT32_MAX so they wrap (Zig's wrapping test).
#include <array>
#include <cstring>

#include "cq.hpp"
#include "helpers.hpp"
#include "sq.hpp"

using namespace luring::uring;

namespace {

// A fake ring region: head, tail, mask, entries, flags, dropped, overflow, then the
// index array and CQEs, at the offsets below.
struct FakeRing {
    alignas(64) std::array<std::byte, 4096> mem{};
    std::array<Sqe, 4> sqes{};

    static constexpr std::uint32_t kEntries = 4;

    std::uint32_t& word(std::uint32_t off) { return *reinterpret_cast<std::uint32_t*>(&mem[off]); }

    SqringOffsets sq_off() const {
        SqringOffsets o{};
        o.head = 0; o.tail = 4; o.ring_mask = 8; o.ring_entries = 12;
        o.flags = 16; o.dropped = 20; o.array = 64;
        return o;
    }
    CqringOffsets cq_off() const {
        CqringOffsets o{};
        o.head = 128; o.tail = 132; o.ring_mask = 136; o.ring_entries = 140;
        o.overflow = 144; o.cqes = 256;
        return o;
    }
    FakeRing(std::uint32_t start) {
        word(0) = start; word(4) = start; word(8) = kEntries - 1; word(12) = kEntries;
        word(128) = start; word(132) = start; word(136) = kEntries - 1; word(140) = kEntries;
    }
    Cqe* cqes() { return reinterpret_cast<Cqe*>(&mem[256]); }
};

}  // namespace

TEST_CASE("sq: fills to exactly `entries`, then nullptr, across the u32 wrap") {
    FakeRing fake(0xffff'fffeU);
    SubmissionQueue sq;
    sq.attach(fake.mem.data(), fake.sq_off(), fake.sqes.data(), true);
    // The identity index array was written once.
    for (std::uint32_t i = 0; i < FakeRing::kEntries; ++i) CHECK(fake.word(64 + 4 * i) == i);

    for (int round = 0; round < 3; ++round) {
        CHECK(sq.space_left() == 4);
        for (int i = 0; i < 4; ++i) {
            Sqe* sqe = sq.get_sqe();
            REQUIRE(sqe != nullptr);
            sqe->user_data = 42;
        }
        CHECK(sq.get_sqe() == nullptr);
        CHECK(sq.space_left() == 0);
        CHECK(sq.flush() == 4);
        CHECK(fake.word(4) == 0xffff'fffeU + 4 * (round + 1));  // tail published, wrapped
        fake.word(0) = fake.word(4);                            // "kernel" consumes all
        CHECK(sq.ready() == 0);
    }
}

TEST_CASE("sq: get_sqe zeroes the slot it hands out") {
    FakeRing fake(0);
    SubmissionQueue sq;
    sq.attach(fake.mem.data(), fake.sq_off(), fake.sqes.data(), false);
    std::memset(fake.sqes.data(), 0xff, sizeof(fake.sqes));
    Sqe* sqe = sq.get_sqe();
    REQUIRE(sqe != nullptr);
    const auto* bytes = reinterpret_cast<const unsigned char*>(sqe);
    for (std::size_t i = 0; i < sizeof(Sqe); ++i) CHECK(bytes[i] == 0);
    // Without the index array nothing was written there.
    CHECK(fake.word(64) == 0);
}

TEST_CASE("cq: copies in order across the u32 wrap and advances the head once") {
    FakeRing fake(0xffff'fffdU);
    CompletionQueue cq;
    cq.attach(fake.mem.data(), fake.cq_off());
    std::uint64_t next = 0;
    std::uint64_t expect = 0;
    for (int round = 0; round < 5; ++round) {
        // "Kernel" posts 3 CQEs.
        for (int i = 0; i < 3; ++i) {
            std::uint32_t tail = fake.word(132);
            fake.cqes()[tail & 3] = Cqe{next++, 7, 0};
            fake.word(132) = tail + 1;
        }
        CHECK(cq.ready() == 3);
        std::array<Cqe, 2> out{};
        CHECK(cq.copy(out.data(), 2) == 2);
        CHECK(out[0].user_data == expect++);
        CHECK(out[1].user_data == expect++);
        CHECK(fake.word(128) == fake.word(132) - 1);
        CHECK(cq.copy(out.data(), 2) == 1);
        CHECK(out[0].user_data == expect++);
        CHECK(cq.ready() == 0);
        CHECK(cq.copy(out.data(), 2) == 0);
    }
}
