// SPDX-License-Identifier: Apache-2.0
// The Lua module's request slots (src/lua/requests.hpp): which buffers a slot keeps
// when its request ends, so steady-state I/O allocates nothing.
#include "helpers.hpp"
#include "requests.hpp"

using luring::lua::Requests;

namespace {

// Runs one request of `size` bytes of buffer in a fresh slot to its end (finish, then
// trim, as end_request does); returns the slot.
std::uint32_t run_request(Requests& q, std::uint32_t size) {
    std::uint32_t grown = 0;
    REQUIRE(q.ensure_free(1, grown));
    const std::uint32_t i = q.acquire();
    REQUIRE(q.reserve_buffer(i, size));
    q.start(i, nullptr);  // (the op is not looked at here)
    q.finish(i);
    q.trim(i);
    return i;
}

}  // namespace

TEST_CASE("request slots: a 64 KiB receive's buffer stays, a larger one goes back") {
    Requests q;
    // luring.async's receives: recv_until of 64 KiB with a 255-byte delimiter behind.
    const std::uint32_t until = (64U << 10) + 2 + 255;
    std::uint32_t i = run_request(q, until);
    CHECK(q[i].buf != nullptr);
    CHECK(q[i].buf_cap == until);
    // Kept: the next request in that slot reuses it, with no new allocation.
    const char* kept = q[i].buf;
    std::uint32_t grown = 0;
    REQUIRE(q.ensure_free(1, grown));
    std::uint32_t j = q.acquire();
    REQUIRE(j == i);  // the free list is last in, first out
    REQUIRE(q.reserve_buffer(j, 64U << 10));
    CHECK(q[j].buf == kept);
    q.unacquire(j);

    i = run_request(q, 1U << 20);  // a large read: its megabyte is not kept
    CHECK(q[i].buf == nullptr);
    CHECK(q[i].buf_cap == 0);
    q.release_all();
}
